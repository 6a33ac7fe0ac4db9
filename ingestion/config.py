"""One configuration object, read from the environment, with documented defaults.

| variable                       | default                          | meaning                                   |
|--------------------------------|----------------------------------|-------------------------------------------|
| PAIRSTATS_HOME                 | <checkout>/.pairstats            | state: embedded DB, landing, archive, logs |
| PAIRSTATS_WAREHOUSE_URL        | (unset: embedded PostgreSQL)     | libpq URL of a PostgreSQL server          |
| PAIRSTATS_LANDING              | $PAIRSTATS_HOME/landing          | where districts' files arrive             |
| PAIRSTATS_MAX_FILE_MB          | 100                              | files above this size are refused         |
| PAIRSTATS_MAX_UNZIPPED_MB      | 1024                             | xlsx decompressing above this is refused  |

The same object drives ingestion, dbt (through environment variables handed to dbt) and
Airflow, so one setting changes all three.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_url: str | None
    landing: Path
    max_file_bytes: int
    max_unzipped_bytes: int

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
        return cls(
            home=home,
            warehouse_url=url,
            landing=landing,
            max_file_bytes=_int_env(env, "PAIRSTATS_MAX_FILE_MB", 100) * 1024 * 1024,
            max_unzipped_bytes=_int_env(env, "PAIRSTATS_MAX_UNZIPPED_MB", 1024) * 1024 * 1024,
        )
