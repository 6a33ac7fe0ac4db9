"""Apache Superset on the marts: its own virtual environment, configuration and server.

Superset is never a dependency of pairstats. It lives in a virtual environment of its own
(default ``$PAIRSTATS_HOME/superset/venv``, or any path), installed exactly from the committed
lock ``ingestion/data/superset-requirements.lock`` (apache-superset 6.1.0, hash-checked; see
``superset-requirements.in`` for why it is pinned as it is), and is reinstalled when the lock
changes. Its state folder (default ``$PAIRSTATS_HOME/superset/state``) holds the SQLite
metadata database, ``superset_config.py``, the generated SECRET_KEY and the admin's password
(both 0600, generated once and kept).

The configuration turns off what needs the internet or phones home: the Content Security
Policy allows this server only (no Scarf telemetry pixel, no map tiles, no web fonts), and no
feature flag, cache, Celery or mail is configured.

``python -m ingestion.superset up --bi-url URL`` does everything for a user: the environment,
``superset db upgrade`` / ``fab create-admin`` / ``init``, the server (gunicorn, 127.0.0.1),
then the warehouse registered with a ``pairstats bi add`` login, datasets with the column
comments' Chinese labels, two charts and a dashboard (``ingestion.superset_dashboard``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingestion.config import Settings
from ingestion.processes import stop_process

SUPERSET_VERSION = "6.1.0"
DATA = Path(__file__).with_name("data")
REQUIREMENTS = DATA / "superset-requirements.in"
LOCK = DATA / "superset-requirements.lock"
ADMIN = "admin"
_MARKER = "pairstats-superset-lock.sha256"  # in the venv: the lock it was installed from


class SupersetError(RuntimeError):
    pass


@dataclass(frozen=True)
class Paths:
    venv: Path
    state: Path

    @classmethod
    def of(cls, settings: Settings | None = None, venv: Path | None = None, state: Path | None = None) -> Paths:
        settings = settings or Settings.from_env()
        base = settings.home / "superset"
        return cls(Path(venv or base / "venv").resolve(), Path(state or base / "state").resolve())

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


# --------------------------------------------------------------------------- the environment


def lock_digest() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


def _uv() -> str | None:
    beside = Path(sys.executable).with_name("uv")  # pairstats' dev dependencies pin uv
    return str(beside) if beside.exists() else shutil.which("uv")


def compile_lock() -> None:
    """Re-resolve ``superset-requirements.in`` into the lock (needs the package index)."""
    uv = _uv() or "uv"
    command = [uv, "pip", "compile", REQUIREMENTS.name, "--python-version", "3.11", "--generate-hashes"]
    subprocess.run([*command, "-q", "-o", LOCK.name], cwd=DATA, check=True)


def ensure_venv(venv: Path, *, log=print) -> bool:
    """Create or refresh ``venv`` from the lock (exactly its packages, hash-checked); a no-op when
    the venv was installed from the same lock. Returns whether it installed anything."""
    marker = venv / _MARKER
    digest = lock_digest()
    python = venv / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text().strip() == digest:
        return False
    log(f"Superset {SUPERSET_VERSION}: installing {LOCK.name} into {venv}")
    uv = _uv()
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    if uv:
        if not python.exists():
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
        sync = [uv, "pip", "sync", "-q", "--require-hashes", "--python", str(python), str(LOCK)]
        subprocess.run(sync, check=True, env=env)
    else:  # no uv: pip, still hash-checked and without dependency resolution
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--require-hashes", "-r", str(LOCK)]
        subprocess.run(pip, check=True)
    marker.write_text(digest + "\n")
    return True


# --------------------------------------------------------------------------- configuration

_CONFIG = """\
# Written by pairstats (ingestion/superset.py); rewritten on every start — edit there.
SECRET_KEY = open({secret!r}, encoding="utf-8").read().strip()
SQLALCHEMY_DATABASE_URI = "sqlite:///{db}?check_same_thread=false"
DATA_DIR = {state!r}
FEATURE_FLAGS = {{}}
WTF_CSRF_ENABLED = True
MAPBOX_API_KEY = ""
THEME_FONT_URL_ALLOWED_DOMAINS = []
# Only this server: no telemetry pixel (Scarf), map tiles or web fonts from elsewhere.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {{
    "content_security_policy": {{
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    }},
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}}
"""


def _secret_file(path: Path, nbytes: int) -> str:
    """A generated secret, kept (0600) and reused."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(nbytes) + "\n")
    return path.read_text().strip()


def admin_password(paths: Paths) -> str:
    return _secret_file(paths.state / "admin-password", 18)


def write_config(paths: Paths) -> Path:
    paths.state.mkdir(mode=0o700, parents=True, exist_ok=True)  # its metadata: the login's password (encrypted)
    secret = paths.state / "secret-key"
    _secret_file(secret, 48)
    config = paths.state / "superset_config.py"
    text = _CONFIG.format(secret=str(secret), db=paths.state / "superset.db", state=str(paths.state))
    config.write_text(text, encoding="utf-8")
    return config


def superset_env(paths: Paths) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPERSET_", "FLASK_"))}
    env.update(
        SUPERSET_CONFIG_PATH=str(write_config(paths)),
        SUPERSET_HOME=str(paths.state),
        PATH=f"{paths.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def _superset(paths: Paths, *args: str, log_path: Path) -> None:
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"\n$ superset {' '.join(args)}\n")
        log.flush()
        proc = subprocess.run(
            [str(paths.bin("superset")), *args], env=superset_env(paths), stdout=log, stderr=subprocess.STDOUT
        )
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SupersetError(f"`superset {args[0]}` failed ({proc.returncode}); see {log_path}:\n{tail}")


def initialise(paths: Paths) -> None:
    """``superset db upgrade``, ``fab create-admin`` and ``init`` — once per state folder and lock."""
    paths.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = paths.state / "initialised"
    if marker.exists() and marker.read_text().strip() == lock_digest():
        return
    log_path = paths.state / "superset-init.log"
    _superset(paths, "db", "upgrade", log_path=log_path)
    if not marker.exists():
        _superset(
            paths,
            *("fab", "create-admin", "--username", ADMIN, "--firstname", "pairstats", "--lastname", "admin"),
            *("--email", "admin@localhost", "--password", admin_password(paths)),
            log_path=log_path,
        )
    _superset(paths, "init", log_path=log_path)
    marker.write_text(lock_digest() + "\n")


# --------------------------------------------------------------------------- the server


def check_port(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SupersetError(f"{host}:{port} is in use ({exc.strerror}): choose another --port") from exc


def serve(paths: Paths, port: int, host: str = "127.0.0.1") -> subprocess.Popen:
    """Superset under gunicorn (one worker, threads), in a session of its own; waits until it is up."""
    check_port(host, port)  # else /health could answer from another server on that port
    log_path = paths.state / "superset-server.log"
    command = [str(paths.bin("gunicorn")), "--workers", "1", "--threads", "8", "--worker-class", "gthread"]
    command += ["--timeout", "300", "--bind", f"{host}:{port}", "superset.app:create_app()"]
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command, env=superset_env(paths), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SupersetError(f"Superset exited ({proc.returncode}); see {log_path}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=5) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise SupersetError(f"Superset not up on {host}:{port} after 180 s; see {log_path}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (its own session), SIGKILL if it lingers."""
    stop_process(proc, grace=20)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.superset", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--venv", type=Path, help="Superset's virtual environment (default $PAIRSTATS_HOME/superset/venv)"
    )
    parser.add_argument("--state", type=Path, help="its state folder (default $PAIRSTATS_HOME/superset/state)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="create or refresh the virtual environment from the lock")
    sub.add_parser("lock", help="re-resolve superset-requirements.in into the lock (needs the package index)")
    up = sub.add_parser("up", help="install, initialise, serve, and build the dashboard; runs until Ctrl-C")
    up.add_argument("--bi-url", required=True, help="the URL `pairstats bi add NAME` printed (postgresql over TCP)")
    up.add_argument("--port", type=int, default=8088)
    up.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    paths = Paths.of(venv=args.venv, state=args.state)
    if args.command == "lock":
        compile_lock()
        return 0
    ensure_venv(paths.venv)
    if args.command == "install":
        return 0
    from ingestion.superset_dashboard import Superset, build_dashboard

    check_port(args.host, args.port)
    initialise(paths)
    proc = serve(paths, args.port, args.host)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # through `finally`: the server stops too
    try:
        base = f"http://{args.host}:{args.port}"
        board = build_dashboard(Superset(base, ADMIN, admin_password(paths)), args.bi_url)
        print(f"Superset {SUPERSET_VERSION}: {base}{board.url}  (login {ADMIN} / {admin_password(paths)})")
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
