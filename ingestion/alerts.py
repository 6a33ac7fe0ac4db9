"""Telling the maintainers: email over SMTP, an optional webhook, and the record of what was sent.

One configuration (``ingestion.config.Settings``) drives it all:

- ``PAIRSTATS_SMTP_URL``: ``smtp://[user[:password]@]host[:port][?starttls=true&timeout=30]``
  (port 25 by default, 587 usual with STARTTLS), or ``smtps://…`` for TLS from the first byte
  (port 465). User and password are URL-encoded. ``cafile=/path/ca.pem`` trusts a private
  CA; certificates are always verified.
- ``PAIRSTATS_ALERT_EMAILS``: the maintainers, comma-separated; ``PAIRSTATS_ALERT_FROM``: the sender.
- ``PAIRSTATS_ALERT_WEBHOOK``: optional; every message is also POSTed there as JSON.

Airflow's own SMTP connection (``smtp_default``, used by anything in Airflow that mails) is
derived from the same URL (:func:`airflow_smtp_connection`), so there is one place to set it.

Every message sent, failed or skipped is a row of ``audit.alerts``: the nightly digest reads
it to tell new problems from problems already reported, the watchdog to alert once per run.

Pipeline alerts (:func:`on_task_failure`, :func:`check_overdue_runs`) live here too: the DAG
files only wire them in.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import ssl
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ingestion.config import TRUE_WORDS, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    tls: bool = False  # TLS from the first byte (smtps)
    starttls: bool = False
    timeout: float = 30.0
    cafile: str | None = None  # a CA bundle to trust (a private mail server's certificate)

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"PAIRSTATS_SMTP_URL must start with smtp:// or smtps://, got {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("PAIRSTATS_SMTP_URL has no host")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            starttls=query.get("starttls", "").lower() in TRUE_WORDS,
            timeout=float(query.get("timeout") or 30),
            cafile=query.get("cafile") or None,
        )


def airflow_smtp_connection(settings: Settings) -> str | None:
    """``AIRFLOW_CONN_SMTP_DEFAULT`` (JSON form) for the configured SMTP server, or None.

    The SMTP provider's hook defaults to SMTP_SSL *and* STARTTLS; both are set explicitly from
    the URL (JSON booleans: in the URI form the string "false" would count as true)."""
    if not settings.smtp_url:
        return None
    cfg = SmtpConfig.from_url(settings.smtp_url)
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": cfg.host,
            "port": cfg.port,
            "login": cfg.user,
            "password": cfg.password,
            "extra": {
                "disable_ssl": not cfg.tls,
                "disable_tls": not cfg.starttls,
                "from_email": settings.alert_from,
                "timeout": int(cfg.timeout),
                "retry_limit": 1,
            },
        }
    )


# --------------------------------------------------------------------------- sending


@dataclass
class Message:
    kind: str  # digest | task_failure | overdue_run
    subject: str
    text: str
    html: str | None = None
    run_id: str | None = None
    alert_key: str | None = None
    new_problems: int = 0
    open_problems: int = 0
    payload: dict[str, Any] | None = None  # what the webhook receives besides subject and text


def send(settings: Settings, message: Message, conn: Any | None = None) -> list[str]:
    """Send by email (and webhook, if configured); record every attempt in ``audit.alerts``
    when a warehouse connection is given. Returns the channels that delivered. Never raises
    for a delivery failure: it is logged and recorded as ``failed``."""
    delivered: list[str] = []
    attempts: list[tuple[str, tuple[str, ...], str, str | None]] = []
    if settings.smtp_url and settings.alert_emails:
        try:
            send_email(settings, message)
            attempts.append(("email", settings.alert_emails, "sent", None))
            delivered.append("email")
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            log.error("alert email failed: %s", exc)
            attempts.append(("email", settings.alert_emails, "failed", f"{type(exc).__name__}: {exc}"[:500]))
    else:
        missing = "PAIRSTATS_SMTP_URL" if not settings.smtp_url else "PAIRSTATS_ALERT_EMAILS"
        log.warning("no alert email sent: %s is not set (%s)", missing, message.subject)
        attempts.append(("email", settings.alert_emails, "skipped", f"{missing} is not set"))
    if settings.alert_webhook:
        try:
            post_webhook(settings.alert_webhook, message)
            attempts.append(("webhook", (settings.alert_webhook,), "sent", None))
            delivered.append("webhook")
        except OSError as exc:
            log.error("alert webhook failed: %s", exc)
            attempts.append(("webhook", (settings.alert_webhook,), "failed", f"{type(exc).__name__}: {exc}"[:500]))
    if conn is not None:
        record(conn, message, attempts)
    return delivered


def send_email(settings: Settings, message: Message) -> None:
    cfg = SmtpConfig.from_url(settings.smtp_url or "")
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = settings.alert_from
    mail["To"] = ", ".join(settings.alert_emails)
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain="pairstats")
    mail["X-Pairstats-Kind"] = message.kind
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    context = ssl.create_default_context(cafile=cfg.cafile)
    smtp_class = smtplib.SMTP_SSL if cfg.tls else smtplib.SMTP
    kwargs: dict[str, Any] = {"timeout": cfg.timeout}
    if cfg.tls:
        kwargs["context"] = context
    with smtp_class(cfg.host, cfg.port, **kwargs) as smtp:
        if cfg.starttls:
            smtp.starttls(context=context)
        if cfg.user:
            smtp.login(cfg.user, cfg.password or "")
        smtp.send_message(mail)


def post_webhook(url: str, message: Message, timeout: float = 15.0) -> None:
    body = json.dumps(
        {"kind": message.kind, "subject": message.subject, "text": message.text, **(message.payload or {})},
        ensure_ascii=False,
        default=str,
    ).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (a configured URL)
        response.read()


def record(conn: Any, message: Message, attempts: Sequence[tuple[str, tuple[str, ...], str, str | None]]) -> None:
    for channel, recipients, status, error in attempts:
        conn.execute(
            """insert into audit.alerts (kind, run_id, alert_key, channel, recipients, subject, status, error,
                                         new_problems, open_problems)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                message.kind,
                message.run_id,
                message.alert_key,
                channel,
                list(recipients),
                message.subject,
                status,
                error,
                message.new_problems,
                message.open_problems,
            ),
        )
    conn.commit()


# --------------------------------------------------------------------------- pipeline alerts


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every task of the three DAGs: mail the maintainers.

    A refused file fails no task (it is a result: its batch reports it, the nightly digest
    lists it), so only pipeline errors reach here. Never raises: a callback's error would only
    be logged by Airflow anyway."""
    try:
        exception = context.get("exception")
        ti = context.get("ti") or context.get("task_instance")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
        task_id = getattr(ti, "task_id", "?")
        run_id = context.get("run_id") or getattr(ti, "run_id", "?")
        map_index = getattr(ti, "map_index", -1)
        label = f"{task_id}[{map_index}]" if map_index not in (None, -1) else task_id
        try_number = getattr(ti, "try_number", None)
        settings = Settings.from_env()
        subject = f"[pairstats] 任务失败 / task failed: {dag_id}.{label}"
        text = "\n".join(
            [
                f"DAG {dag_id} 的任务 {label} 失败（运行 {run_id}，第 {try_number} 次尝试）。",
                f"Task {label} of DAG {dag_id} failed (run {run_id}, try {try_number}).",
                "",
                f"错误 / error: {type(exception).__name__ if exception else '?'}: {exception}",
                "",
                f"日志 / log: {getattr(ti, 'log_url', None) or 'the task log in the Airflow UI'}",
            ]
        )
        message = Message("task_failure", subject, text, run_id=run_id, alert_key=f"{dag_id}/{run_id}/{label}")
        _send_and_record(settings, message)
    except Exception:  # a callback must not raise
        log.exception("the task failure alert could not be sent")


def _send_and_record(settings: Settings, message: Message) -> None:
    from ingestion.warehouse import connect, warehouse_url

    try:
        conn = connect(warehouse_url(settings), connect_timeout=10)
    except Exception:  # the warehouse may be what failed: send without recording
        log.exception("warehouse unavailable: sending the alert without recording it")
        send(settings, message)
        return
    with conn:
        send(settings, message, conn)


@dataclass(frozen=True)
class OverdueRun:
    dag_id: str
    run_id: str
    state: str
    since: dt.datetime  # queued_at or start_date
    minutes: float
    deadline_minutes: int


def overdue_runs(metadata_conn: Any, deadlines: Mapping[str, int], now: dt.datetime | None = None) -> list[OverdueRun]:
    """DAG runs still queued or running past their deadline (minutes since they were queued)."""
    now = now or dt.datetime.now(dt.UTC)
    rows = metadata_conn.execute(
        """select dag_id, run_id, state, coalesce(queued_at, start_date) from dag_run
           where state in ('queued', 'running') and dag_id = any(%s)""",
        (list(deadlines),),
    ).fetchall()
    out = []
    for dag_id, run_id, state, since in rows:
        if since is None:
            continue
        minutes = (now - since).total_seconds() / 60
        if minutes > deadlines[dag_id]:
            out.append(OverdueRun(dag_id, run_id, state, since, round(minutes, 1), deadlines[dag_id]))
    return sorted(out, key=lambda r: r.since)


def check_overdue_runs(settings: Settings | None = None, *, metadata_url: str | None = None) -> list[OverdueRun]:
    """Alert, once per run, on every pipeline DAG run not finished past its deadline.

    The equivalent of Airflow's Deadline Alerts that works on this Airflow version under every
    way of running (see README "Alerts"): the ``pipeline_watchdog`` DAG calls it every ten
    minutes. Returns the runs it alerted on this time."""
    import psycopg

    from ingestion.warehouse import connect, libpq_url, warehouse_url
    from ingestion.warehouse import metadata_url as airflow_metadata_url

    settings = settings or Settings.from_env()
    url = metadata_url or libpq_url(airflow_metadata_url(settings))
    with psycopg.connect(url, connect_timeout=10) as meta:
        late = overdue_runs(meta, settings.run_deadlines)
    alerted = []
    with connect(warehouse_url(settings)) as conn:
        for run in late:
            key = f"{run.dag_id}/{run.run_id}"
            # once per run; a failed delivery is tried again, a skipped one (nothing configured) is not
            done = conn.execute(
                "select 1 from audit.alerts where kind = 'overdue_run' and alert_key = %s"
                " and status in ('sent', 'skipped')",
                (key,),
            ).fetchone()
            if done:
                continue
            since = run.since.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
            subject = f"[pairstats] 运行超时 / run overdue: {run.dag_id} {run.run_id}"
            text = "\n".join(
                [
                    f"DAG {run.dag_id} 的运行 {run.run_id} 自 {since}（北京时间）起处于 {run.state} 状态，"
                    f"已 {run.minutes:.0f} 分钟，超过时限 {run.deadline_minutes} 分钟。",
                    f"Run {run.run_id} of DAG {run.dag_id} has been {run.state} since {since} (Asia/Shanghai): "
                    f"{run.minutes:.0f} minutes, past its deadline of {run.deadline_minutes} minutes.",
                ]
            )
            message = Message("overdue_run", subject, text, run_id=run.run_id, alert_key=key)
            if send(settings, message, conn):
                alerted.append(run)
    return alerted
