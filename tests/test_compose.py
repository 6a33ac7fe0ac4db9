"""docker-compose.yml, the Dockerfile and ``make compose-env``, checked without a Docker engine.

The compose file is parsed (PyYAML, with its anchors and merge keys) and interpolated the way
compose does it; every command a service runs is checked against the real Airflow CLI of the
lock file (``airflow <args> --help`` from this virtualenv).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from ingestion import compose_env
from ingestion.config import CHECKOUT, Settings

COMPOSE = CHECKOUT / "docker-compose.yml"
DOCKERFILE = CHECKOUT / "Dockerfile"
ENV_EXAMPLE = CHECKOUT / ".env.example"
BIN = Path(sys.executable).parent

INFRA = {"postgres", "redis", "mailpit"}  # services that are not the pairstats image
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "flower",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def doc() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(doc) -> dict[str, dict]:
    return doc["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """What compose makes of a value, given the variables of .env (``$$`` is a literal ``$``)."""

    def one(m: re.Match) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        have = env.get(name)
        if op and op.startswith(":") and not have or have is None:
            if op in (":?", "?"):
                raise KeyError(f"{name}: {arg}")
            return arg if op else ""
        return have

    parts = value.split("$$")
    return "$".join(_VAR.sub(one, part) for part in parts)


def generated_env(tmp_path: Path) -> dict[str, str]:
    path = compose_env.write_env(tmp_path / ".env", ENV_EXAMPLE)
    return parse_env(path.read_text(encoding="utf-8"))


def parse_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


def required_vars(text: str) -> set[str]:
    return {m["name"] for m in _VAR.finditer(text) if m["op"] in (":?", "?")}


# --------------------------------------------------------------------------- shape


def test_docker_compose_parses(services):
    env = services["airflow-worker"]["environment"]
    assert env["PAIRSTATS_WAREHOUSE_URL"].startswith("postgresql://")
    assert {"PAIRSTATS_SMTP_URL", "PAIRSTATS_ALERT_EMAILS"} <= set(env)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith(":8080/execution/")


def test_every_required_service_is_there(services):
    assert AIRFLOW_SERVICES | INFRA == set(services)
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["flower"]["command"] == "celery flower"
    for name, command in [
        ("airflow-apiserver", "api-server"),
        ("airflow-scheduler", "scheduler"),
        ("airflow-dag-processor", "dag-processor"),
        ("airflow-triggerer", "triggerer"),
    ]:
        assert services[name]["command"] == command


def test_all_airflow_services_use_the_one_built_image(services):
    images = {(services[s]["image"], services[s].get("build")) for s in AIRFLOW_SERVICES}
    assert len(images) == 1, images
    image, build = images.pop()
    assert build == "." and (CHECKOUT / build / "Dockerfile").is_file()
    assert all(services[s]["image"] != image and "build" not in services[s] for s in INFRA)


def test_every_long_running_service_has_a_healthcheck(services):
    for name, svc in services.items():
        if name == "airflow-init":  # runs once: the others wait for service_completed_successfully
            assert "healthcheck" not in svc and "restart" not in svc
            continue
        check = svc.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert svc.get("restart") == "always", name
    tests = {name: " ".join(svc["healthcheck"]["test"]) for name, svc in services.items() if "healthcheck" in svc}
    assert "http://localhost:8080/api/v2/version" in tests["airflow-apiserver"]
    assert "http://localhost:8974/health" in tests["airflow-scheduler"]
    assert "--job-type DagProcessorJob" in tests["airflow-dag-processor"]
    assert "--job-type TriggererJob" in tests["airflow-triggerer"]
    assert (
        'celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d "celery@$${HOSTNAME}"'
        in (COMPOSE.read_text(encoding="utf-8"))
    )


def test_dependencies_form_an_acyclic_start_order(services):
    deps: dict[str, dict[str, str]] = {}
    for name, svc in services.items():
        on = svc.get("depends_on", {})
        assert isinstance(on, dict), f"{name}: depends_on needs conditions"
        deps[name] = {dep: spec["condition"] for dep, spec in on.items()}
        assert set(deps[name].values()) <= CONDITIONS, name
        assert set(deps[name]) <= set(services), name
    order: list[str] = []
    pending = dict(deps)
    while pending:
        ready = sorted(n for n, d in pending.items() if set(d) <= set(order))
        assert ready, f"a cycle among {sorted(pending)}"
        order += ready
        for n in ready:
            del pending[n]
    assert deps["postgres"] == deps["redis"] == {} == deps["mailpit"]
    assert deps["airflow-init"] == {"postgres": "service_healthy", "redis": "service_healthy"}
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert deps[name]["airflow-init"] == "service_completed_successfully", name
        assert deps[name]["postgres"] == deps[name]["redis"] == "service_healthy", name
    assert deps["airflow-worker"]["airflow-apiserver"] == "service_healthy"  # tasks report to its execution API
    # a service every `up` starts never waits for one that only a profile starts
    profiled = {n for n, s in services.items() if s.get("profiles")}
    assert not any(set(deps[n]) & profiled for n in services)


def test_flower_and_the_mail_catcher_only_in_profiles(services):
    profiles = {name: svc.get("profiles") for name, svc in services.items() if svc.get("profiles")}
    assert profiles == {"flower": ["flower"], "mailpit": ["dev"]}
    assert services["mailpit"]["image"].startswith("axllent/mailpit")


def test_the_worker_scales(services):
    """`docker compose up --scale airflow-worker=3`: nothing that names or binds one container."""
    worker = services["airflow-worker"]
    assert not {"container_name", "ports", "hostname"} & set(worker)
    assert not any("container_name" in svc for svc in services.values())
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown, as the official file


def test_state_is_on_named_volumes_and_matches_the_settings(doc, services, tmp_path):
    dot_env = generated_env(tmp_path)
    env = {k: interpolate(str(v), dot_env) for k, v in services["airflow-worker"]["environment"].items()}
    mounts = dict(reversed(v.split(":")[:2]) for v in services["airflow-worker"]["volumes"])  # target -> volume
    assert set(mounts.values()) <= set(doc["volumes"])  # named volumes, no bind mount

    def volume_of(path: Path) -> str:
        target = max((t for t in mounts if path == Path(t) or Path(t) in path.parents), key=len)
        return mounts[target]

    settings = Settings.from_env(env)  # every value the containers get is one the settings accept
    assert volume_of(settings.landing) == "pairstats-landing"
    assert volume_of(settings.archive) == "pairstats-home"
    assert volume_of(settings.data_docs) == "pairstats-data-docs"
    assert settings.allowed_landings == (settings.landing,)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/pairstats/dags"
    assert settings.warehouse_url and settings.warehouse_url.endswith("@postgres:5432/pairstats")


def test_warehouse_and_airflow_metadata_are_separate_databases(services):
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(":5432/airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg_async://")
    assert env["PAIRSTATS_WAREHOUSE_URL"].startswith("postgresql://pairstats:")
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "airflow"
    host, _, target = (
        next(v for v in services["postgres"]["volumes"] if "initdb" in v).rpartition(":ro")[0].partition(":")
    )
    script = CHECKOUT / host
    assert target.startswith("/docker-entrypoint-initdb.d/") and script.is_file()
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text(encoding="utf-8")
    assert "create database pairstats owner pairstats" in text
    assert "password :'warehouse_password'" in text  # from the environment, never in the file
    # the watchdog reads Airflow's dag_run with the warehouse's credentials (ingestion/alerts.py)
    init = services["airflow-init"]["command"][1]
    assert "grant select on dag_run to pairstats" in init
    assert init.index("airflow db migrate") < init.index("grant select on dag_run")


# --------------------------------------------------------------------------- secrets


def test_no_secret_is_committed(services):
    text = COMPOSE.read_text(encoding="utf-8")
    secretish = re.compile(r"(PASSWORD|SECRET|_KEY|TOKEN|_AUTH)$")
    urls = 0
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            value = str(value)
            if secretish.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{name}: {key}={value}"
            for userinfo in re.findall(r"://([^/@]*)@", value):  # a password inside a URL
                urls += 1
                assert re.fullmatch(r"[a-z]*:\$\{[A-Z_]+:\?[^}]+\}", userinfo), f"{name}: {key}={value}"
    assert urls >= 4  # metadata (sync, async), result backend, broker, warehouse: all checked
    # the secrets compose requires are exactly those make compose-env generates
    assert required_vars(text) == set(compose_env.SECRETS)
    example = parse_env(ENV_EXAMPLE.read_text(encoding="utf-8"))
    for key, value in example.items():
        if key in compose_env.SECRETS or secretish.search(key):
            assert value == "", f".env.example carries a value for {key}"
    assert set(compose_env.SECRETS) <= set(example)


def test_dot_env_is_ignored_and_never_tracked():
    git = ["git", "-C", str(CHECKOUT)]
    assert subprocess.run([*git, "check-ignore", "-q", ".env"], check=False).returncode == 0
    assert subprocess.run([*git, "check-ignore", "-q", ".env.example"], check=False).returncode == 1
    tracked = subprocess.run([*git, "ls-files", "--", ".env"], capture_output=True, text=True, check=True).stdout
    assert tracked == ""
    dockerignore = (CHECKOUT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in dockerignore  # nor sent to a docker build


# --------------------------------------------------------------------------- commands


def _commands(services: dict) -> set[tuple[str, ...]]:
    """Every Airflow (and pairstats) command line the services and their healthchecks run."""
    found: set[tuple[str, ...]] = set()
    for name, svc in services.items():
        if name in INFRA:
            continue
        command = svc["command"]
        if svc.get("entrypoint") == "/bin/bash":  # airflow-init: a script
            assert command[0] == "-c"
            for line in command[1].splitlines():
                words = shlex.split(line.strip().replace("$${", "${"), comments=True)
                if words[:1] == ["/entrypoint"]:
                    words = words[1:]
                if words[:1] in (["airflow"], ["pairstats"]):
                    found.add(tuple(words))
        else:  # the image's entrypoint runs `airflow <command>`
            found.add(("airflow", *shlex.split(command)))
        check = " ".join(svc["healthcheck"]["test"][1:]) if "healthcheck" in svc else ""
        if check.startswith("airflow "):
            found.add(tuple(shlex.split(check.replace("$${HOSTNAME}", "worker-1"))))
    return found


def test_every_command_is_valid_for_airflow_3_3(services, tmp_path):
    commands = _commands(services)
    assert {
        ("airflow", "api-server"),
        ("airflow", "scheduler"),
        ("airflow", "dag-processor"),
        ("airflow", "triggerer"),
        ("airflow", "celery", "worker"),
        ("airflow", "celery", "flower"),
        ("airflow", "db", "migrate"),
        ("airflow", "jobs", "check", "--job-type", "DagProcessorJob", "--hostname", "worker-1"),
        ("airflow", "jobs", "check", "--job-type", "TriggererJob", "--hostname", "worker-1"),
        ("pairstats", "warehouse", "init"),
    } <= commands
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PAIRSTATS_WAREHOUSE"))} | {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    }

    def run(args: tuple[str, ...]) -> tuple[tuple[str, ...], subprocess.CompletedProcess]:
        argv = [str(BIN / args[0]), *args[1:], "--help"]  # argparse checks what comes before --help
        return args, subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)

    # and the module the worker's healthcheck names as its Celery app (celery 5.7 broke its import)
    celery_app = [
        str(BIN / "python"),
        "-c",
        "from airflow.providers.celery.executors.celery_executor import app; print(app.main)",
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        app = pool.submit(subprocess.run, celery_app, env=env, capture_output=True, text=True, timeout=120)
        results = list(pool.map(run, sorted(commands)))
    for args, proc in results:
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "usage:" in out.lower() and "error" not in out.lower(), (args, out[-1500:])
    assert app.result().returncode == 0, app.result().stderr[-1500:]
    assert "celery_executor" in app.result().stdout


# --------------------------------------------------------------------------- image


def test_dockerfile_builds_the_one_image_from_the_lock():
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert [i for i in instructions if i.startswith("FROM ")] == ["FROM apache/airflow:3.3.2-python3.11"]
    pyproject = (CHECKOUT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"apache-airflow==3.3.2"' in pyproject and 'requires-python = ">=3.11,<3.12"' in pyproject
    assert "apache-airflow==3.3.2 \\" in (CHECKOUT / "requirements.lock").read_text(encoding="utf-8")
    assert re.search(r"^COPY .*requirements\.lock ", text, re.M)
    install = re.search(r"^RUN uv pip sync .*requirements\.lock$", text, re.M)
    assert install and "--require-hashes" in install[0]
    assert re.search(r"^RUN uv pip install .*--no-deps .*-e /opt/pairstats", text, re.M)
    for folder in ("ingestion", "dags", "dbt_project", "expectations"):
        assert re.search(rf"^COPY --chown=airflow:0 {folder}/ /opt/pairstats/{folder}/$", text, re.M), folder
    # what `pip install -e` needs besides the package (pyproject.toml names README.md as readme)
    assert re.search(r"^COPY --chown=airflow:0 pyproject.toml README.md /opt/pairstats/$", text, re.M)


# --------------------------------------------------------------------------- make compose-env


def test_compose_env_writes_fresh_secrets_and_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / ".env"
    assert compose_env.main([str(target), "--example", str(ENV_EXAMPLE)]) == 0
    env = parse_env(target.read_text(encoding="utf-8"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    Fernet(env["AIRFLOW_FERNET_KEY"].encode())  # a valid key (raises otherwise)
    values = [env[name] for name in compose_env.SECRETS]
    assert all(len(v) >= 32 for v in values) and len(set(values)) == len(values)
    assert not [k for k, v in env.items() if k in compose_env.SECRETS and not v]  # no placeholder left
    # the rest of the example as it was, and compose can interpolate every variable it needs
    example = parse_env(ENV_EXAMPLE.read_text(encoding="utf-8"))
    assert {k: v for k, v in env.items() if k not in compose_env.SECRETS} == {
        k: v for k, v in example.items() if k not in compose_env.SECRETS
    }
    interpolate(COMPOSE.read_text(encoding="utf-8"), env)  # no ${VAR:?} left unset

    before = target.read_text(encoding="utf-8")
    assert compose_env.main([str(target), "--example", str(ENV_EXAMPLE)]) == 1
    assert "refused" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == before
    with pytest.raises(compose_env.EnvExists):
        compose_env.write_env(target, ENV_EXAMPLE)
    assert compose_env.main([str(target), "--example", str(ENV_EXAMPLE), "--force"]) == 0
    assert parse_env(target.read_text(encoding="utf-8"))["AIRFLOW_FERNET_KEY"] != env["AIRFLOW_FERNET_KEY"]


def test_compose_env_needs_every_secret_in_the_example(tmp_path):
    example = tmp_path / "example"
    example.write_text("AIRFLOW_FERNET_KEY=\n", encoding="utf-8")
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        compose_env.write_env(tmp_path / ".env", example)
    assert not (tmp_path / ".env").exists()


def test_make_compose_env_runs_the_generator():
    makefile = (CHECKOUT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ncompose-env:", 1)[1].split("\n\n", 1)[0]
    assert "-m ingestion.compose_env $(if $(filter 1,$(FORCE)),--force) .env" in recipe


def test_shell_scripts_parse(services):
    """airflow-init's script (as compose hands it to bash) and the postgres init script: `bash -n`."""
    script = interpolate(services["airflow-init"]["command"][1], {"AIRFLOW_UID": "50000"})
    for text in (script, (CHECKOUT / "docker" / "postgres" / "init-warehouse.sh").read_text(encoding="utf-8")):
        proc = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
