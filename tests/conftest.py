"""Fixtures: a real PostgreSQL for every test that needs one, and nothing left behind.

The server is the one named by PAIRSTATS_WAREHOUSE_URL when set, else an embedded
PostgreSQL started for this test run in a temporary folder (and deleted afterwards). One
template database per run holds the schema and the region register; each test that asks
for ``db`` or ``settings`` gets its own database cloned from it, dropped after the test.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ingestion.config import Settings
from ingestion.warehouse import server_url, with_database

# Markers of tests that take minutes, deselected unless ``-m`` names them.
OPT_IN_MARKERS = ("topology", "superset")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``topology`` start the whole native Celery topology (``make topology-test``),
    tests marked ``superset`` install and start Apache Superset (``make bi-test``): minutes each.
    They run only when ``-m`` names their marker, never in a plain ``make test``."""
    markexpr = config.option.markexpr or ""
    skipped = [m for m in OPT_IN_MARKERS if m not in markexpr]

    def opted_out(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(m) for m in skipped)

    deselected = [item for item in items if opted_out(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not opted_out(item)]


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    """A new database, cloned from ``template`` if given (retried while the template is in use)."""
    query = sql.SQL("create database {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for attempt in range(20):  # a template must have no other session for a moment
            try:
                conn.execute(query)
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise
                time.sleep(0.25)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the maintenance database on the server under test."""
    configured = os.environ.get("PAIRSTATS_WAREHOUSE_URL", "").strip()
    if configured:
        yield with_database(configured, "postgres")
        return
    home = tmp_path_factory.mktemp("embedded-pg")
    settings = Settings.from_env({"PAIRSTATS_HOME": str(home)})
    url = server_url(settings, "postgres")
    yield url
    from ingestion.warehouse import stop

    stop(settings)


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A database with the schema and the committed region register, used as a template."""
    from ingestion.warehouse import init_warehouse

    name = f"pairstats_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(with_database(pg_admin_url, name)) as conn:
            init_warehouse(conn)
            conn.commit()
        yield name
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh database for one test (schema + register), dropped afterwards."""
    name = f"pairstats_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template_db))
        )
    try:
        yield with_database(pg_admin_url, name)
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as conn:
        yield conn


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env({"PAIRSTATS_HOME": str(tmp_path / "home"), "PAIRSTATS_WAREHOUSE_URL": db_url})


# --------------------------------------------------------------------------- a real SMTP server


class Mailbox:
    """What an aiosmtpd server received: (envelope sender, recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Any]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        from email import message_from_bytes, policy

        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def bodies(self) -> list[str]:
        return [m.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n") for _, _, m in self.messages]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for _, _, m in self.messages]


def _controller_class():
    from aiosmtpd.controller import Controller

    class FreePortController(Controller):
        """aiosmtpd's Controller on a port the OS picks (port 0 fails its start-up self-test)."""

        def _trigger_server(self):
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

    return FreePortController


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Mailbox]]:
    """A real SMTP server on 127.0.0.1 for one test: (PAIRSTATS_SMTP_URL, mailbox)."""
    mailbox = Mailbox()
    controller = _controller_class()(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", mailbox
    finally:
        controller.stop()
