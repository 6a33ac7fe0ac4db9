"""The embedded PostgreSQL: started on demand, reused, one per PAIRSTATS_HOME, stoppable."""

from __future__ import annotations

import psycopg

from ingestion import warehouse
from ingestion.config import Settings


def test_embedded_server_per_home(tmp_path):
    a = Settings.from_env({"PAIRSTATS_HOME": str(tmp_path / "a")})
    b = Settings.from_env({"PAIRSTATS_HOME": str(tmp_path / "b")})
    try:
        url_a, url_b = warehouse.warehouse_url(a), warehouse.warehouse_url(b)
        assert url_a != url_b
        assert warehouse.warehouse_url(a) == url_a  # reused, not started twice
        with psycopg.connect(url_a, autocommit=True) as conn:
            conn.execute("create table marker (x int)")
        with psycopg.connect(url_b) as conn:
            assert conn.execute("select to_regclass('public.marker')").fetchone()[0] is None
            assert conn.execute("select current_database()").fetchone()[0] == "pairstats"
        params = warehouse.libpq_params(url_a)
        assert params["dbname"] == "pairstats" and params["host"].startswith(str(tmp_path))
    finally:
        assert warehouse.stop(a) and warehouse.stop(b)
    assert not (a.pgdata / "postmaster.pid").exists()
    assert warehouse.stop(a) is False


def test_sqlalchemy_and_libpq_forms():
    url = "postgresql://user:secret@db.example:6543/wh"
    assert warehouse.sqlalchemy_url(url) == "postgresql+psycopg://user:secret@db.example:6543/wh"
    assert warehouse.libpq_params(url) == {
        "host": "db.example",
        "port": "6543",
        "user": "user",
        "password": "secret",
        "dbname": "wh",
    }
    assert warehouse.with_database(url, "airflow") == "postgresql://user:secret@db.example:6543/airflow"
