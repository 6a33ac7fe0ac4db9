# syntax=docker/dockerfile:1
# The one image of every Airflow service in docker-compose.yml (and of workers on other
# machines): the official Airflow image with exactly the packages of requirements.lock and this
# project — ingestion/, its DAGs, dbt project and Great Expectations suites — baked in.
#   docker build -t pairstats-airflow .      (docker compose builds it too)
FROM apache/airflow:3.3.2-python3.11

# Folders the named volumes are mounted on: owned by the Airflow user, so a fresh volume is too.
USER root
RUN mkdir -p /opt/pairstats /opt/airflow/auth \
        /var/lib/pairstats/archive /var/lib/pairstats/data_docs /srv/pairstats/landing \
    && chown -R airflow:0 /opt/pairstats /opt/airflow/auth /var/lib/pairstats /srv/pairstats \
    && chmod -R g+rwX /opt/pairstats /opt/airflow/auth /var/lib/pairstats /srv/pairstats
USER airflow

WORKDIR /opt/pairstats

# Exactly the lock file, hash-checked, as `make install` does: uv (shipped in the image) syncs
# the image's environment ($VIRTUAL_ENV, /home/airflow/.local) to it, so the image's own extras
# (providers this project does not use) are removed and every version is the tested one.
COPY --chown=airflow:0 requirements.lock /opt/pairstats/requirements.lock
RUN uv pip sync --no-cache --require-hashes --compile-bytecode /opt/pairstats/requirements.lock

# The project itself, editable so that its checkout (ingestion.config.CHECKOUT) is /opt/pairstats,
# where dags/, dbt_project/ and expectations/ are; its dependencies are all in the lock (--no-deps).
COPY --chown=airflow:0 pyproject.toml README.md /opt/pairstats/
COPY --chown=airflow:0 ingestion/ /opt/pairstats/ingestion/
COPY --chown=airflow:0 dags/ /opt/pairstats/dags/
COPY --chown=airflow:0 dbt_project/ /opt/pairstats/dbt_project/
COPY --chown=airflow:0 expectations/ /opt/pairstats/expectations/
RUN uv pip install --no-cache --no-deps --compile-bytecode -e /opt/pairstats \
    && cd / && python -c "import ingestion.config as c; assert str(c.CHECKOUT) == '/opt/pairstats', c.CHECKOUT"

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/pairstats/dags \
    PAIRSTATS_HOME=/var/lib/pairstats \
    PAIRSTATS_LANDING=/srv/pairstats/landing \
    GX_ANALYTICS_ENABLED=false
