"""What the native Celery topology is made of: its settings (``TopologyConfig``, from
``PAIRSTATS_TOPOLOGY_*``), its databases, and the environment all its processes share
(compose's ``x-airflow-common``), secrets generated once into ``$PAIRSTATS_HOME/topology``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ingestion.config import Settings

__all__ = [
    "DAG_IDS", "DEFAULT_PG", "DEFAULT_REDIS", "METADATA_DB", "WAREHOUSE_DB", "TopologyConfig", "topology_dir",
    "topology_env", "warehouse_settings",
]  # fmt: skip

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"
METADATA_DB = "pairstats_topo_airflow"
WAREHOUSE_DB = "pairstats_topo_wh"
DAG_IDS = ("ingest_submissions", "build_warehouse", "nightly_data_quality", "pipeline_watchdog")


@dataclass
class TopologyConfig:
    admin_url: str = DEFAULT_PG  # the PostgreSQL server of the metadata database (maintenance db URL)
    metadata_db: str = METADATA_DB
    warehouse_db: str | None = WAREHOUSE_DB  # on admin_url's server; None: the settings' warehouse
    redis_url: str = DEFAULT_REDIS
    api_port: int = 8090
    workers: int = 2
    concurrency: int = 2
    log_ports: tuple[int, ...] = ()  # trigger log server, then one per worker; empty: 8795, 8796 …
    health_port: int = 8975  # the scheduler's /health
    api_workers: int = 1  # uvicorn processes of the api-server (compose: Airflow's default, 4)
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TopologyConfig:
        env = os.environ if env is None else env
        return cls(
            admin_url=env.get("PAIRSTATS_TOPOLOGY_PG") or DEFAULT_PG,
            redis_url=env.get("PAIRSTATS_TOPOLOGY_REDIS") or DEFAULT_REDIS,
            api_port=int(env.get("PAIRSTATS_TOPOLOGY_PORT") or 8090),
            workers=int(env.get("PAIRSTATS_TOPOLOGY_WORKERS") or 2),
            concurrency=int(env.get("PAIRSTATS_TOPOLOGY_CONCURRENCY") or 2),
        )

    def ports(self) -> tuple[int, ...]:
        return self.log_ports or tuple(8795 + i for i in range(self.workers + 1))


def _with_db(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def topology_dir(settings: Settings) -> Path:
    return settings.home / "topology"


def _secrets(folder: Path) -> dict[str, str]:
    """Fernet key, JWT secret and API secret key: generated once, shared by every process."""
    import secrets

    path = folder / "secrets.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    from cryptography.fernet import Fernet

    values = {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    return values


def warehouse_settings(settings: Settings, config: TopologyConfig) -> Settings:
    """The settings the topology's processes get: its own warehouse database unless one is configured."""
    from dataclasses import replace

    if settings.warehouse_url or not config.warehouse_db:
        return settings
    return replace(settings, warehouse_url=_with_db(config.admin_url, config.warehouse_db))


def topology_env(settings: Settings, config: TopologyConfig) -> dict[str, str]:
    """The environment every process of the topology shares (compose's ``x-airflow-common``)."""
    from ingestion.orchestration import airflow_env
    from ingestion.warehouse import ensure_database

    folder = topology_dir(settings)
    ensure_database(config.admin_url, config.metadata_db, private=True)
    if settings.warehouse_url and config.warehouse_db and settings.warehouse_url.endswith("/" + config.warehouse_db):
        ensure_database(config.admin_url, config.warehouse_db)
    env = airflow_env(settings, metadata_db=config.metadata_db)
    meta = urlsplit(_with_db(config.admin_url, config.metadata_db))
    sync = urlunsplit(meta._replace(scheme="postgresql+psycopg2"))
    env.update(
        AIRFLOW_HOME=str(folder / "airflow"),
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(folder / "airflow" / "logs"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sync,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=urlunsplit(meta._replace(scheme="postgresql+psycopg_async")),
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=config.redis_url,
        AIRFLOW__CELERY__RESULT_BACKEND=urlunsplit(meta._replace(scheme="db+postgresql")),
        AIRFLOW__CELERY__WORKER_CONCURRENCY=str(config.concurrency),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(config.api_port),
        AIRFLOW__API__WORKERS=str(config.api_workers),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{config.api_port}/execution/",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="true",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST="127.0.0.1",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(config.health_port),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(config.ports()[0]),
        GX_ANALYTICS_ENABLED="false",
    )
    env.update(_secrets(folder))
    env.update(config.extra_env)
    return env
