"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose specification's JSON schema (kept beside
the repository, in ../shared/compose-spec.json), and every command it or the image runs is
parsed by the real ``gradlab`` command line, so a renamed subcommand or option fails here
rather than in the course lab's containers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from jsonschema import validators
from jsonschema.exceptions import best_match
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gradlab.cli import app
from store.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_SCHEMA = ROOT.parent / "shared" / "compose-spec.json"
IN_CI = bool(os.environ.get("CI"))

PGDATA_PARENT = "/var/lib/postgresql"  # the official image keeps its data under here


# --- reading the files ------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, inside a continuation too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """The base image of the last stage (through stage aliases) and that stage's instructions."""
    bases: dict[str, str] = {}
    base = ""
    stage: list[tuple[str, str]] = []
    for keyword, arguments in instructions:
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            base = bases.get(words[0].lower(), words[0])
            if len(words) == 3 and words[1].lower() == "as":
                bases[words[2].lower()] = base
            stage = []
        else:
            stage.append((keyword, arguments))
    return base, stage


def exec_argv(arguments: str) -> list[str]:
    """A CMD/ENTRYPOINT/HEALTHCHECK command: exec form as is, shell form under /bin/sh -c."""
    if arguments.startswith("["):
        return json.loads(arguments)
    return ["/bin/sh", "-c", arguments]


def last(stage: list[tuple[str, str]], keyword: str) -> str | None:
    found = [arguments for kw, arguments in stage if kw == keyword]
    return found[-1] if found else None


def as_argv(value: str | list[str] | None) -> list[str] | None:
    if value is None or isinstance(value, list):
        return value
    return shlex.split(value)


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {k: (v if sep else None) for k, sep, v in (e.partition("=") for e in env)}
    return {k: None if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Each dependency's condition (the short list form means ``service_started``)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def seconds(duration: str | int | float) -> float:
    """A Compose duration (``30s``, ``1m30s``, ``500ms``) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def container_port(published: str | int | dict[str, Any]) -> str:
    if isinstance(published, dict):
        return str(published["target"])
    return str(published).rsplit(":", 1)[-1].split("/")[0]


# --- the gradlab command line -------------------------------------------------------------


def gradlab_params(argv: list[str], where: str) -> tuple[list[str], dict[str, Any]]:
    """Check ``argv`` is ``gradlab <subcommand> [options]`` as the installed CLI parses it;
    return the subcommand path and the options' parsed values."""
    assert argv and Path(argv[0]).name == "gradlab", f"{where} runs {argv}, not `gradlab …`"
    args = argv[1:]
    shown = shlex.join(["gradlab", *args, "--help"])
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"{where}: `{shown}` exits {result.exit_code}:\n{result.output}"

    command = typer.main.get_command(app)
    path: list[str] = []
    rest = list(args)
    while isinstance(command, typer.core.TyperGroup):
        known = sorted(command.commands)
        assert rest and rest[0] in command.commands, (
            f"{where}: `{shlex.join(argv)}` names no subcommand of `gradlab {' '.join(path)}` "
            f"(it has {', '.join(known)})"
        )
        path.append(rest.pop(0))
        command = command.commands[path[-1]]
    try:  # parses and converts every option (types, ranges) without running the command
        context = command.make_context(shlex.join(["gradlab", *path]), rest)
    except typer.TyperException as exc:  # usage errors and bad values
        problem = exc.format_message()
    else:
        return path, context.params
    pytest.fail(f"{where}: `{shlex.join(argv)}` is rejected: {problem}")


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    """What the Dockerfile builds: its final base image and the instructions of that stage."""
    base, stage = final_stage(dockerfile_instructions(DOCKERFILE.read_text()))
    return {"base": base, "stage": stage}


@pytest.fixture(scope="module")
def ours(services, image) -> dict[str, list[str]]:
    """The services that run the image this repository builds, each with the argv it runs:
    the service's entrypoint/command, else the Dockerfile's (a compose ``entrypoint`` also
    drops the image's CMD)."""
    image_entrypoint = exec_argv(last(image["stage"], "ENTRYPOINT") or "[]")
    image_cmd = exec_argv(last(image["stage"], "CMD") or "[]")
    built = {s["image"] for s in services.values() if "build" in s and "image" in s}
    argvs = {}
    for name, service in services.items():
        if "build" not in service and service.get("image") not in built:
            continue
        entrypoint = as_argv(service.get("entrypoint"))
        command = as_argv(service.get("command"))
        if entrypoint is not None:
            argvs[name] = entrypoint + (command or [])
        else:
            argvs[name] = image_entrypoint + (image_cmd if command is None else command)
    return argvs


@pytest.fixture(scope="module")
def postgres(services) -> tuple[str, dict[str, Any]]:
    found = [
        (name, s)
        for name, s in services.items()
        if str(s.get("image", "")).split(":")[0] in {"postgres", "library/postgres"}
    ]
    assert len(found) == 1, f"expected one service on the official postgres image, got {found}"
    return found[0]


@pytest.fixture(scope="module")
def migrator(ours) -> str:
    """The one-shot service that runs ``gradlab migrate``."""
    found = [name for name, argv in ours.items() if argv[1:2] == ["migrate"]]
    assert len(found) == 1, f"expected one service running `gradlab migrate`, got {found}"
    return found[0]


# --- the compose file ---------------------------------------------------------------------


def test_compose_file_is_valid_under_the_compose_specification(compose):
    if not COMPOSE_SCHEMA.is_file():
        message = (
            f"The Compose specification schema is missing: expected it at {COMPOSE_SCHEMA} "
            "(compose-spec.json from github.com/compose-spec/compose-spec, next to this "
            "repository); docker-compose.yml was not validated."
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    declared = schema.get("$schema", "")
    # The spec writes https://json-schema.org/draft-07/schema; jsonschema knows the draft by
    # its canonical id, http://json-schema.org/draft-07/schema#.
    spellings = [
        declared,
        re.sub(r"^https://json-schema\.org/", "http://json-schema.org/", declared),
    ]
    found = [validators.validator_for({"$schema": s}, default=None) for s in spellings]
    validator_class = next((cls for cls in found if cls is not None), None)
    assert validator_class is not None, f"jsonschema knows no validator for $schema {declared!r}"
    validator_class.check_schema(schema)

    problems = [best_match([error]) for error in validator_class(schema).iter_errors(compose)]
    assert not problems, "docker-compose.yml breaks the Compose specification:\n" + "\n".join(
        f"  {p.json_path}: {p.message}" for p in problems
    )
    assert "version" not in compose, "`version:` is obsolete in the Compose specification"


def test_the_services_are_there(services):
    assert {"api", "worker", "postgres"} <= set(services)


def test_every_command_is_a_real_gradlab_command(ours):
    assert {"api", "worker"} <= set(ours), "api and worker must run the image built here"
    for name, argv in ours.items():
        gradlab_params(argv, f"service {name!r}")


def test_api_serves_the_published_port_on_all_interfaces(services, ours):
    path, params = gradlab_params(ours["api"], "service 'api'")
    assert path == ["serve"]
    assert params["host"] == "0.0.0.0", "in a container, 127.0.0.1 is unreachable from outside"
    published = {container_port(p) for p in services["api"].get("ports", [])}
    assert str(params["port"]) in published, f"api serves :{params['port']}, publishes {published}"
    assert params["workers"] == 0, "the worker service runs the jobs; the api should not"


def test_workers_are_replicated_and_shut_down_gracefully(services, ours):
    worker = services["worker"]
    path, _ = gradlab_params(ours["worker"], "service 'worker'")
    assert path == ["worker"]
    replicas = (worker.get("deploy") or {}).get("replicas", worker.get("scale", 1))
    assert int(replicas) >= 2, f"{replicas} worker replica(s): the lab needs at least 2"

    shutdown = environment(worker).get("GRADLAB_SHUTDOWN_SECONDS")
    allowed = float(shutdown) if shutdown else Settings.model_fields["shutdown_seconds"].default
    grace = seconds(worker.get("stop_grace_period", "10s"))
    assert grace > allowed, (
        f"stop_grace_period {grace:g}s leaves a worker no time to hand its job back "
        f"(it may take {allowed:g}s) before SIGKILL"
    )
    assert worker.get("stop_signal", "SIGTERM") in {"SIGTERM", "SIGINT"}


def test_the_api_is_given_the_time_gradlab_serve_takes_to_stop(services, ours):
    from gradlab.serve import API_STOP_SECONDS

    api = services["api"]
    _, params = gradlab_params(ours["api"], "service 'api'")
    shutdown = environment(api).get("GRADLAB_SHUTDOWN_SECONDS")
    workers = float(shutdown) if shutdown else Settings.model_fields["shutdown_seconds"].default
    # The supervisor waits for its workers (their shutdown and 5 s), then for the API.
    needed = API_STOP_SECONDS + (workers + 5 if params["workers"] else 0)
    grace = seconds(api.get("stop_grace_period", "10s"))
    assert grace > needed, f"stop_grace_period {grace:g}s: gradlab serve may take {needed:g}s"
    assert api.get("stop_signal", "SIGTERM") in {"SIGTERM", "SIGINT"}


def test_api_and_workers_use_the_postgres_service_through_psycopg(services, ours, postgres):
    pg_name, pg = postgres
    pg_env = environment(pg)
    user = pg_env.get("POSTGRES_USER") or "postgres"
    for name in ours:
        url_text = environment(services[name]).get("GRADLAB_DATABASE_URL")
        assert url_text, f"service {name!r} sets no GRADLAB_DATABASE_URL (it would use SQLite)"
        url = make_url(url_text)
        assert url.drivername == "postgresql+psycopg", f"{name}: {url.drivername}"
        assert url.host == pg_name, f"{name} connects to {url.host}, not the {pg_name} service"
        assert url.port in (None, 5432)
        assert url.username == user
        assert url.password == pg_env.get("POSTGRES_PASSWORD")
        assert url.database == (pg_env.get("POSTGRES_DB") or user)


def test_postgres_has_a_healthcheck_and_a_named_volume(compose, postgres):
    _, pg = postgres
    check = pg.get("healthcheck") or {}
    assert not check.get("disable") and "pg_isready" in str(check.get("test"))

    declared = set(compose.get("volumes") or {})
    named = []
    for volume in pg.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume["target"]
        else:
            source, target = [*volume.split(":"), ""][:2]
        if source and not source.startswith((".", "/", "~")):
            named.append((source, target))
    assert named, "postgres keeps its data in no named volume"
    for source, target in named:
        assert source in declared, f"volume {source!r} is not declared under top-level volumes"
        assert target.startswith(PGDATA_PARENT), f"{target} is not where postgres keeps data"


def test_migrations_finish_before_the_api_serves_or_workers_claim(services, ours, migrator):
    assert depends_on(services[migrator]), f"{migrator} must wait for the database"
    assert set(depends_on(services[migrator]).values()) == {"service_healthy"}
    assert services[migrator].get("restart", "no") in {"no", "on-failure"}, "it is a one-shot"
    for name in ("api", "worker"):
        condition = depends_on(services[name]).get(migrator)
        assert condition == "service_completed_successfully", (
            f"{name} must wait for `{migrator}` to complete successfully, not {condition}"
        )


def test_only_the_api_keeps_the_images_healthz_check(services, ours):
    """The image's HEALTHCHECK asks for the API; containers that do not serve it must turn it
    off, or Docker reports every worker unhealthy."""
    for name, argv in ours.items():
        check = services[name].get("healthcheck") or {}
        if argv[1:2] == ["serve"]:
            assert not check.get("disable")
            if "test" in check:
                test = str(check["test"])
                assert "/healthz" in test and "curl" not in test and "wget" not in test
        else:
            assert check.get("disable") or "test" in check, f"{name} inherits the /healthz check"


# --- the Dockerfile -----------------------------------------------------------------------


def test_image_is_debian_12_with_its_python_3_11_in_a_venv_and_the_postgres_driver_and_the_datasets(
    image,
):
    """Debian 12's own python3 (3.11), which tests/test_container.py can bootstrap without a
    registry; gradlab in a venv whose bin comes first on PATH, so ``python`` is the venv's."""
    assert image["base"] in {"debian:bookworm-slim", "debian:bookworm"}, image["base"]
    runs = [arguments for keyword, arguments in image["stage"] if keyword == "RUN"]
    assert any("apt-get install" in r and "python3-venv" in r for r in runs)
    venvs = [m[1] for r in runs for m in re.finditer(r"python3 -m venv (\S+)", r)]
    assert len(venvs) == 1, venvs
    path = image_environment(image).get("PATH", "")
    assert path.split(":")[0] == f"{venvs[0]}/bin", f"PATH={path} does not start with the venv"
    assert any("pip install" in r and ".[postgres,datasets]" in r for r in runs), "psycopg, sklearn"


def test_image_runs_as_a_user_other_than_root(image):
    user = last(image["stage"], "USER")
    assert user, "the image runs as root: add a USER"
    assert user.split(":")[0] not in {"root", "0"}, f"USER {user} is root"


def test_image_healthcheck_hits_healthz_with_python(image):
    healthcheck = last(image["stage"], "HEALTHCHECK")
    assert healthcheck, "the image has no HEALTHCHECK"
    match = re.fullmatch(r"((?:--\S+\s+)*)(CMD|NONE)\b\s*(.*)", healthcheck, re.DOTALL)
    assert match and match[2] == "CMD", f"HEALTHCHECK {healthcheck}"
    argv = exec_argv(match[3])
    assert "/healthz" in " ".join(argv)
    program = shlex.split(argv[2])[0] if argv[:2] == ["/bin/sh", "-c"] else argv[0]
    # debian:bookworm-slim has no curl or wget; the interpreter is the HTTP client there is.
    assert Path(program).name.startswith("python"), f"debian:bookworm-slim has no {program}"


def test_image_runs_a_real_gradlab_command_in_exec_form(image):
    entrypoint = last(image["stage"], "ENTRYPOINT")
    cmd = last(image["stage"], "CMD")
    for arguments in (entrypoint, cmd):
        # Shell form makes /bin/sh PID 1, and sh does not pass SIGTERM on to gradlab.
        assert arguments is None or arguments.startswith("["), f"use exec form: {arguments}"
    argv = exec_argv(entrypoint or "[]") + exec_argv(cmd or "[]")
    path, params = gradlab_params(argv, "the image's CMD")
    if path == ["serve"]:
        assert params["host"] == "0.0.0.0"
        exposed = {p.split("/")[0] for p in (last(image["stage"], "EXPOSE") or "").split()}
        assert str(params["port"]) in exposed
        assert f":{params['port']}/healthz" in (last(image["stage"], "HEALTHCHECK") or "")


def test_build_context_leaves_out_local_state_but_not_the_source():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for local in (".venv", ".git", "gradlab.db"):
        assert any(fnmatch(local, p.removeprefix("**/")) for p in patterns), local
    for needed in ("pyproject.toml", "README.md", "gradlab", "service", "worker", "migrations"):
        assert not any(fnmatch(needed, p) for p in patterns), f".dockerignore drops {needed}"


# --- the web surface: who may reach the API in a container --------------------------------


def image_environment(image: dict[str, Any]) -> dict[str, str]:
    """The variables the image's ENV instructions set (``ENV A=1 B=2`` form)."""
    env: dict[str, str] = {}
    for keyword, arguments in image["stage"]:
        if keyword == "ENV":
            env.update(word.partition("=")[::2] for word in shlex.split(arguments))
    return env


def settings_from(env: dict[str, str | None]) -> Settings:
    values = {k.removeprefix("GRADLAB_").lower(): v for k, v in env.items() if v is not None}
    return Settings(**{k: v for k, v in values.items() if k in Settings.model_fields})


def test_the_api_may_listen_beyond_loopback_because_it_asks_for_tokens(services, ours, image):
    """`gradlab serve --host 0.0.0.0` starts only with GRADLAB_AUTH=required (or an explicit
    --allow-unauthenticated); the compose api and the image's own CMD both must start."""
    from gradlab.serve import refusal

    baked = image_environment(image)
    for where, argv, env in (
        ("service 'api'", ours["api"], {**baked, **environment(services["api"])}),
        ("the image's CMD", exec_argv(last(image["stage"], "CMD") or "[]"), baked),
    ):
        path, params = gradlab_params(argv, where)
        assert path == ["serve"]
        why = refusal(params["host"], settings_from(env), params["allow_unauthenticated"])
        assert why is None, f"{where} would not start: {why}"


def test_the_api_answers_to_the_names_it_is_published_under(services):
    raw = environment(services["api"]).get("GRADLAB_ALLOWED_HOSTS")
    assert raw, "the api sets no GRADLAB_ALLOWED_HOSTS: say which names the lab reaches it by"
    # ${GRADLAB_ALLOWED_HOSTS:-default}: the lab sets its own name; the default is loopback.
    default = re.fullmatch(r"\$\{GRADLAB_ALLOWED_HOSTS:-([^}]*)\}", raw)
    names = Settings(allowed_hosts=default[1] if default else raw).allowed_host_names
    assert {"localhost", "127.0.0.1"} <= set(names), names  # the published port, from the host
