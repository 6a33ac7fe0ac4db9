"""One configuration object, read from the environment, with documented defaults.

| variable                       | default                          | meaning                                   |
|--------------------------------|----------------------------------|-------------------------------------------|
| PAIRSTATS_HOME                 | <checkout>/.pairstats            | state: embedded DB, landing, archive, logs |
| PAIRSTATS_WAREHOUSE_URL        | (unset: embedded PostgreSQL)     | libpq URL of a PostgreSQL server          |
| PAIRSTATS_LANDING              | $PAIRSTATS_HOME/landing          | where districts' files arrive             |
| PAIRSTATS_MAX_FILE_MB          | 100                              | files above this size are refused         |
| PAIRSTATS_MAX_UNZIPPED_MB      | 1024                             | xlsx decompressing above this is refused  |
| PAIRSTATS_SMTP_URL             | (unset: no mail)                 | smtp://[user:pass@]host[:port][?starttls=true]  |
| PAIRSTATS_ALERT_EMAILS         | (unset)                          | maintainers, comma-separated              |
| PAIRSTATS_ALERT_FROM           | pairstats@localhost              | sender of the digest and the alerts       |
| PAIRSTATS_ALERT_WEBHOOK        | (unset)                          | also POST the digest / alerts as JSON here |
| PAIRSTATS_ALL_CLEAR            | false                            | send a digest when every check passes     |
| PAIRSTATS_DATA_DOCS_URL        | file://$PAIRSTATS_HOME/data_docs | where the GX Data Docs are served, for links |
| PAIRSTATS_RUN_DEADLINES        | ingest 30, build 60, nightly 120 | minutes per DAG run: dag_id=minutes,...   |
| PAIRSTATS_LANDING_ROOTS        | $PAIRSTATS_LANDING               | folders a run may scan (os.pathsep-separated) |
| PAIRSTATS_SETTLE_SECONDS       | 60                               | a file unchanged for less is still arriving |
| PAIRSTATS_BATCH_FILES          | 400                              | files per batch (one GX call per kind) |
| PAIRSTATS_WAREHOUSE_LISTEN     | (unset: unix socket only)        | embedded server also on TCP (SCRAM) |

The same object drives ingestion, dbt (through environment variables handed to dbt) and
Airflow, so one setting changes all three.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


DEFAULT_RUN_DEADLINES = {"ingest_submissions": 30, "build_warehouse": 60, "nightly_data_quality": 120}
TRUE_WORDS = ("1", "true", "yes", "on")  # what a yes/no setting accepts as yes


def _listen(raw: str) -> tuple[str, int] | None:
    """``127.0.0.1:5433``, ``[::1]:5433``, ``*:5433`` or a bare ``5433`` (localhost) -> (host, port)."""
    raw = raw.strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", raw
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.strip().isdigit() or not 0 < int(port) < 65536 or any(c in host for c in " ,'\"\\"):
        raise ValueError(f"PAIRSTATS_WAREHOUSE_LISTEN: expected HOST:PORT (e.g. 127.0.0.1:5433), got {raw!r}")
    return host, int(port)


def _deadlines(raw: str) -> dict[str, int]:
    """``ingest_submissions=30,build_warehouse=60`` over the defaults (minutes)."""
    out = dict(DEFAULT_RUN_DEADLINES)
    for item in filter(None, (x.strip() for x in raw.split(","))):
        dag_id, sep, minutes = item.partition("=")
        if not sep or not minutes.strip().isdigit():
            raise ValueError(f"PAIRSTATS_RUN_DEADLINES: expected dag_id=minutes, got {item!r}")
        out[dag_id.strip()] = int(minutes)
    return out


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_url: str | None
    landing: Path
    max_file_bytes: int
    max_unzipped_bytes: int
    smtp_url: str | None = None
    alert_emails: tuple[str, ...] = ()
    alert_from: str = "pairstats@localhost"
    alert_webhook: str | None = None
    all_clear: bool = False
    data_docs_url: str | None = None
    run_deadlines: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RUN_DEADLINES))
    landing_roots: tuple[Path, ...] = ()  # empty: (landing,)
    settle_seconds: int = 60
    batch_files: int = 400
    warehouse_listen: tuple[str, int] | None = None  # the embedded server also listens on TCP (host, port)

    @property
    def allowed_landings(self) -> tuple[Path, ...]:
        """The folders a run may scan: the configured roots, or the landing folder alone."""
        return self.landing_roots or (self.landing,)

    @property
    def data_docs(self) -> Path:
        """Where the nightly run builds GX's Data Docs (index.html)."""
        return self.home / "data_docs"

    @property
    def data_docs_index(self) -> str:
        """The link to the Data Docs that the digest and the DAG's doc carry."""
        if self.data_docs_url:
            return self.data_docs_url.rstrip("/") + "/index.html"
        return (self.data_docs / "index.html").as_uri()

    @property
    def archive(self) -> Path:
        """Every file received, kept byte for byte under its content hash."""
        return self.home / "archive"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("PAIRSTATS_HOME") or CHECKOUT / ".pairstats").expanduser().resolve()
        landing = Path(env.get("PAIRSTATS_LANDING") or home / "landing").expanduser().resolve()
        url = (env.get("PAIRSTATS_WAREHOUSE_URL") or "").strip() or None
        emails = tuple(e.strip() for e in (env.get("PAIRSTATS_ALERT_EMAILS") or "").split(",") if e.strip())
        return cls(
            home=home,
            warehouse_url=url,
            landing=landing,
            max_file_bytes=_int_env(env, "PAIRSTATS_MAX_FILE_MB", 100) * 1024 * 1024,
            max_unzipped_bytes=_int_env(env, "PAIRSTATS_MAX_UNZIPPED_MB", 1024) * 1024 * 1024,
            smtp_url=(env.get("PAIRSTATS_SMTP_URL") or "").strip() or None,
            alert_emails=emails,
            alert_from=(env.get("PAIRSTATS_ALERT_FROM") or "").strip() or "pairstats@localhost",
            alert_webhook=(env.get("PAIRSTATS_ALERT_WEBHOOK") or "").strip() or None,
            all_clear=(env.get("PAIRSTATS_ALL_CLEAR") or "").strip().lower() in TRUE_WORDS,
            data_docs_url=(env.get("PAIRSTATS_DATA_DOCS_URL") or "").strip() or None,
            run_deadlines=_deadlines(env.get("PAIRSTATS_RUN_DEADLINES") or ""),
            landing_roots=tuple(
                Path(p).expanduser().resolve()
                for p in (env.get("PAIRSTATS_LANDING_ROOTS") or "").split(os.pathsep)
                if p.strip()
            ),
            settle_seconds=_int_env(env, "PAIRSTATS_SETTLE_SECONDS", 60),
            batch_files=max(1, _int_env(env, "PAIRSTATS_BATCH_FILES", 400)),
            warehouse_listen=_listen(env.get("PAIRSTATS_WAREHOUSE_LISTEN") or ""),
        )
