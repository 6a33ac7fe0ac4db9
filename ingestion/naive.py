"""The script a user could write instead of pairstats: the national benchmark's baseline.

For each file: ``json.loads`` / ``pandas.read_excel`` / ``pandas.read_csv``, one DataFrame per
record kind, ``DataFrame.to_sql`` into PostgreSQL. No validation, no quarantine, no audit, no
archive, no normalisation (the generated national files are canonical, so it lands them).
``python -m ingestion.naive LANDING URL`` prints files, rows and seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from ingestion.contract import RECORD_KINDS


def naive_load(landing: Path, url: str, schema: str = "naive") -> tuple[int, int, float]:
    """(files, rows, seconds) of the naive loop over every file under ``landing``."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"drop schema if exists {schema} cascade"))
        conn.execute(text(f"create schema {schema}"))
    headers = {f.header_with_unit: f.name for k in RECORD_KINDS.values() for f in k.fields}
    files = rows = 0
    t0 = time.perf_counter()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        frames: dict[str, pd.DataFrame] = {}
        if path.suffix == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            frames = {k: pd.DataFrame(doc[k]) for k in RECORD_KINDS if doc.get(k)}
        elif path.suffix == ".xlsx":
            sheets = pd.read_excel(path, sheet_name=None, engine="calamine")
            by_label = {k.label_zh: k.name for k in RECORD_KINDS.values()}
            frames = {by_label[name]: df.rename(columns=headers) for name, df in sheets.items() if name in by_label}
        elif path.suffix == ".csv":
            kind = path.stem.split("_", 2)[-1]
            frames = {kind: pd.read_csv(path).rename(columns=headers)}
        for kind, df in frames.items():
            df["reporting_unit_code"] = path.parent.name
            df = df.astype("string")  # the three formats disagree on types (是 vs true): land text
            df.to_sql(kind, engine, schema=schema, if_exists="append", index=False)
            rows += len(df)
        files += 1
    return files, rows, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    landing, url = (argv or sys.argv[1:])[:2]
    files, rows, seconds = naive_load(Path(landing), url)
    print(f"naive: {files} files, {rows} rows in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
