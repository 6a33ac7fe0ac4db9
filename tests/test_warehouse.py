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


def test_audit_statistics_are_kept_so_per_file_lookups_stay_index_probes(db):
    """Without statistics (autovacuum off, or not run yet) the planner read the whole audit table
    for every new file; keep_statistics analyses it once enough of it changed."""
    from ingestion import audit

    db.execute(
        """insert into audit.submission_files (file_hash, original_name, size_bytes, status, reporting_unit_code,
                                               period, record_kinds)
           select md5(i::text), i || '.csv', 1, 'rejected', lpad((i % 3000)::text, 6, '0'), '2025-01', '{activities}'
           from generate_series(1, 5000) as i"""
    )
    db.commit()
    db.execute("select pg_stat_force_next_flush()")  # this backend's counters, now (PostgreSQL 15+)
    db.commit()
    assert audit.keep_statistics(db) is True
    analysed = db.execute("select reltuples from pg_class where oid = 'audit.submission_files'::regclass").fetchone()[0]
    assert analysed == 5000
    assert audit.keep_statistics(db) is False  # nothing changed since
    plan = "\n".join(
        r[0]
        for r in db.execute(
            "explain select submission_id from audit.submission_files"
            " where file_hash = 'x' and status <> 'duplicate' and reprocess_of is null"
        )
    )
    assert "submission_files_hash_once_uq" in plan, plan
    assert (
        audit.previous_copy(db, md5 := db.execute("select md5('7')").fetchone()[0])
        == db.execute("select submission_id from audit.submission_files where file_hash = %s", (md5,)).fetchone()[0]
    )
