"""Alerts reach the maintainers: a real SMTP server (aiosmtpd), STARTTLS with a private CA and
AUTH, a real HTTP webhook, Airflow's own SMTP connection derived from the same settings, and
the record in ``audit.alerts``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingestion.alerts import (
    Message,
    SmtpConfig,
    airflow_smtp_connection,
    on_task_failure,
    overdue_runs,
    send,
)
from ingestion.config import Settings


def with_mail(settings: Settings, smtp_url: str, **extra) -> Settings:
    return dataclasses.replace(
        settings, smtp_url=smtp_url, alert_emails=("ops@example.org", "data@example.org"), **extra
    )


def test_smtp_url_forms():
    assert SmtpConfig.from_url("smtp://mail.example.org") == SmtpConfig("mail.example.org", 25)
    cfg = SmtpConfig.from_url("smtp://bot%40example.org:p%40ss@mail.example.org:587?starttls=true&timeout=5")
    assert (cfg.user, cfg.password, cfg.port, cfg.starttls, cfg.tls, cfg.timeout) == (
        "bot@example.org",
        "p@ss",
        587,
        True,
        False,
        5.0,
    )
    assert SmtpConfig.from_url("smtps://mail.example.org").port == 465
    with pytest.raises(ValueError, match="smtp://"):
        SmtpConfig.from_url("http://mail.example.org")
    env = Settings.from_env(
        {
            "PAIRSTATS_SMTP_URL": "smtp://mail:25",
            "PAIRSTATS_ALERT_EMAILS": " a@x.org, b@x.org ,",
            "PAIRSTATS_ALL_CLEAR": "yes",
            "PAIRSTATS_RUN_DEADLINES": "build_warehouse=5",
        }
    )
    assert env.alert_emails == ("a@x.org", "b@x.org") and env.all_clear
    assert env.run_deadlines == {"ingest_submissions": 30, "build_warehouse": 5, "nightly_data_quality": 120}


def test_airflow_smtp_connection_is_derived_from_the_same_url(settings, monkeypatch):
    """Airflow's SmtpHook reads the connection pairstats derives: host, port, login, TLS flags."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    configured = with_mail(settings, "smtp://bot:secret@mail.example.org:587?starttls=true")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", airflow_smtp_connection(configured))
    conn = SmtpHook.get_connection("smtp_default")
    hook = SmtpHook()
    hook.smtp_connection = conn  # what the hook's get_conn() loads, without connecting
    assert (conn.host, conn.port, conn.login, conn.password) == ("mail.example.org", 587, "bot", "secret")
    assert (hook.use_ssl, hook.smtp_starttls, hook.from_email) == (False, True, "pairstats@localhost")
    plain = json.loads(airflow_smtp_connection(with_mail(settings, "smtp://127.0.0.1:2525")))
    assert plain["extra"]["disable_ssl"] is True and plain["extra"]["disable_tls"] is True
    assert airflow_smtp_connection(settings) is None


def test_send_delivers_and_records(settings, db, smtp_server):
    url, mailbox = smtp_server
    message = Message("digest", "[pairstats] 数据质量日报 / digest", "正文 / body ✓\n", html="<p>正文</p>", run_id="r1")
    assert send(with_mail(settings, url), message, db) == ["email"]
    ((sender, rcpts, mail),) = mailbox.messages
    assert sender == "pairstats@localhost" and rcpts == ["ops@example.org", "data@example.org"]
    assert mail["Subject"] == "[pairstats] 数据质量日报 / digest"
    assert mailbox.bodies() == ["正文 / body ✓\n"]
    assert "<p>正文</p>" in mail.get_body(preferencelist=("html",)).get_content()
    rows = db.execute("select kind, channel, status, recipients, run_id from audit.alerts").fetchall()
    assert rows == [("digest", "email", "sent", ["ops@example.org", "data@example.org"], "r1")]


def test_an_unreachable_server_is_recorded_as_failed(settings, db):
    message = Message("digest", "s", "t", run_id="r2")
    assert send(with_mail(settings, "smtp://127.0.0.1:9?timeout=2"), message, db) == []
    status, error = db.execute("select status, error from audit.alerts").fetchone()
    assert status == "failed" and "Connection" in error
    assert send(settings, message, db) == []  # nothing configured: recorded as skipped
    assert db.execute("select status from audit.alerts order by id").fetchall()[-1] == ("skipped",)


def _certificate(folder: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pairstats test mail")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, pem = folder / "cert.pem", folder / "key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, pem


def test_starttls_and_auth_with_a_private_ca(settings, db, tmp_path):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.conftest import Mailbox, _controller_class

    crt, pem = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(crt, pem)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"bot", b"s3cret")
        return AuthResult(success=ok, handled=ok)

    mailbox = Mailbox()
    controller = _controller_class()(
        mailbox,
        hostname="127.0.0.1",
        port=0,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        base = f"smtp://bot:s3cret@127.0.0.1:{controller.port}?starttls=true"
        assert send(with_mail(settings, f"{base}&cafile={crt}"), Message("digest", "tls", "t"), db) == ["email"]
        assert mailbox.subjects() == ["tls"]
        # without the private CA the certificate is not trusted: refused, recorded, nothing sent
        assert send(with_mail(settings, base), Message("digest", "untrusted", "t"), db) == []
        wrong = f"smtp://bot:wrong@127.0.0.1:{controller.port}?starttls=true&cafile={crt}"
        assert send(with_mail(settings, wrong), Message("digest", "wrong password", "t"), db) == []
        assert mailbox.subjects() == ["tls"]
    finally:
        controller.stop()
    statuses = db.execute("select subject, status from audit.alerts order by id").fetchall()
    assert statuses == [("tls", "sent"), ("untrusted", "failed"), ("wrong password", "failed")]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()


def test_webhook_receives_the_same_message(settings, db, smtp_server, webhook):
    url, mailbox = smtp_server
    hook_url, received = webhook
    message = Message("digest", "主题 subject", "文本", payload={"run": {"failed": 3}})
    assert send(with_mail(settings, url, alert_webhook=hook_url), message, db) == ["email", "webhook"]
    assert received == [{"kind": "digest", "subject": "主题 subject", "text": "文本", "run": {"failed": 3}}]
    assert len(mailbox.messages) == 1


class _TI:
    dag_id, task_id, run_id, map_index, try_number, log_url = "build_warehouse", "dbt_build", "r9", -1, 2, None


def test_task_failure_alert(settings, smtp_server, monkeypatch):
    url, mailbox = smtp_server
    monkeypatch.setenv("PAIRSTATS_HOME", str(settings.home))
    monkeypatch.setenv("PAIRSTATS_WAREHOUSE_URL", settings.warehouse_url)
    monkeypatch.setenv("PAIRSTATS_SMTP_URL", url)
    monkeypatch.setenv("PAIRSTATS_ALERT_EMAILS", "ops@example.org")
    on_task_failure({"ti": _TI(), "exception": RuntimeError("dbt build failed"), "run_id": "r9"})
    assert mailbox.subjects() == ["[pairstats] 任务失败 / task failed: build_warehouse.dbt_build"]
    (body,) = mailbox.bodies()
    assert "Task dbt_build of DAG build_warehouse failed (run r9, try 2)" in body and "dbt build failed" in body
    with psycopg.connect(settings.warehouse_url) as conn:
        assert conn.execute("select kind, alert_key, status from audit.alerts").fetchall() == [
            ("task_failure", "build_warehouse/r9/dbt_build", "sent")
        ]


def test_overdue_runs_reads_queued_and_running_runs(db):
    """The watchdog's query against a table shaped like Airflow's dag_run (the real one is used in
    tests/test_airflow.py)."""
    db.execute(
        "create temporary table dag_run (dag_id text, run_id text, state text, queued_at timestamptz,"
        " start_date timestamptz)"
    )
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    rows = [
        ("ingest_submissions", "stuck", "running", now - dt.timedelta(minutes=45), None),
        ("ingest_submissions", "fresh", "running", now - dt.timedelta(minutes=5), None),
        ("build_warehouse", "queued-long", "queued", now - dt.timedelta(minutes=90), None),
        ("build_warehouse", "done", "success", now - dt.timedelta(hours=5), None),
        ("other_dag", "x", "running", now - dt.timedelta(days=1), None),
    ]
    for row in rows:
        db.execute("insert into dag_run values (%s, %s, %s, %s, %s)", row)
    late = overdue_runs(db, {"ingest_submissions": 30, "build_warehouse": 60}, now=now)
    assert [(r.dag_id, r.run_id, r.state, r.minutes) for r in late] == [
        ("build_warehouse", "queued-long", "queued", 90.0),
        ("ingest_submissions", "stuck", "running", 45.0),
    ]
