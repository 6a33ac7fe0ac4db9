#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d):
# the pairstats warehouse as a database of its own, beside Airflow's metadata database
# (POSTGRES_DB), owned by its own role, with the password from .env. Role bi_reader (NOLOGIN
# group, README "Marts") is created here so the warehouse role needs no CREATEROLE.
set -euo pipefail
: "${PAIRSTATS_WAREHOUSE_PASSWORD:?PAIRSTATS_WAREHOUSE_PASSWORD is not set (make compose-env)}"
psql -v ON_ERROR_STOP=1 -v warehouse_password="$PAIRSTATS_WAREHOUSE_PASSWORD" \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<-'EOSQL'
	create role pairstats login password :'warehouse_password';
	create database pairstats owner pairstats;
	revoke all on database pairstats from public;
	grant connect on database pairstats to pairstats;
	create role bi_reader nologin;
	grant connect on database pairstats to bi_reader;
EOSQL
