"""``make compose-env``: a ``.env`` for docker-compose.yml, from ``.env.example``, with fresh secrets.

Every variable of :data:`SECRETS` left empty in the example gets a new value: a Fernet key for
Airflow's ``AIRFLOW_FERNET_KEY``, random hexadecimal tokens (``secrets.token_hex``, 256 bits) for
the rest — safe inside the connection URLs and command lines the compose file builds from them. Other lines are
copied as they are. An existing ``.env`` is never overwritten unless ``force`` (``FORCE=1``).

    python -m ingestion.compose_env [--force] [--example .env.example] [.env]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def fernet_key() -> str:
    from cryptography.fernet import Fernet  # Airflow's own dependency

    return Fernet.generate_key().decode("ascii")


def token() -> str:
    return secrets.token_hex(32)


# The secrets docker-compose.yml requires (``${NAME:?...}``), and how each is made.
SECRETS: dict[str, Callable[[], str]] = {
    "AIRFLOW_FERNET_KEY": fernet_key,
    "AIRFLOW_JWT_SECRET": token,
    "AIRFLOW_API_SECRET_KEY": token,
    "AIRFLOW_ADMIN_PASSWORD": token,
    "POSTGRES_PASSWORD": token,
    "PAIRSTATS_WAREHOUSE_PASSWORD": token,
    "REDIS_PASSWORD": token,
}


class EnvExists(Exception):
    pass


def render(example: str) -> str:
    """The example's text with every empty secret filled in; fails if one is missing."""
    out, seen = [], set()
    for line in example.splitlines():
        name, sep, value = line.partition("=")
        name = name.strip()
        if sep and not line.lstrip().startswith("#") and name in SECRETS:
            seen.add(name)
            if not value.strip():
                line = f"{name}={SECRETS[name]()}"
        out.append(line)
    missing = sorted(set(SECRETS) - seen)
    if missing:
        raise ValueError(f"the example has no line for {', '.join(missing)}")
    return "\n".join(out) + "\n"


def write_env(target: Path, example: Path, *, force: bool = False) -> Path:
    """Write ``target`` (mode 0600) from ``example``; :class:`EnvExists` if it exists and not ``force``."""
    if target.exists() and not force:
        raise EnvExists(f"{target} exists; FORCE=1 (--force) replaces it, and its secrets with it")
    text = render(example.read_text(encoding="utf-8"))
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(target, 0o600)  # also when it existed with other permissions
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.compose_env", description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", default=".env", type=Path)
    parser.add_argument("--example", default=".env.example", type=Path)
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    try:
        path = write_env(args.target, args.example, force=args.force)
    except EnvExists as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} with fresh secrets ({', '.join(SECRETS)}); keep it out of git")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
