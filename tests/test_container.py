"""The image, built from the Dockerfile and run for real, as docker-compose.yml runs it.

There is no Docker engine here, but podman (as root, with runc and host networking) builds
and runs the same Dockerfile. The Dockerfile's base image is not pulled from a registry:
``debootstrap`` builds the Debian root it names (cached between runs on one machine) and
``podman import`` gives it that name, so the Dockerfile stays what any Docker user builds.
Then the compose file's own commands and environment run as containers against this
machine's PostgreSQL, in a fresh database: the one-shot ``gradlab migrate``, the API
(``gradlab serve --workers 0``) and the worker replicas; jobs go in over HTTP and must come
out with every iteration's point, each worker having run some of them.

Required in CI (``CI=true``: missing podman fails); elsewhere it skips, saying why.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import yaml

import migrations
from gradlab.procs import free_port, wait_for
from service.jobs.examples import SEEDS
from tests.conftest import IN_CI, empty_pg_database
from tests.test_compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    ROOT,
    as_argv,
    dockerfile_instructions,
    environment,
    final_stage,
    seconds,
)

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1500)]

# One tag per checkout, so that two worktrees testing at once run their own builds (the
# layers they share are cached once all the same).
IMAGE = f"localhost/gradlab:test-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]}"
CACHE = (
    Path("/var/cache/gradlab-test")
    if os.geteuid() == 0
    else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradlab-test"
)
# What these machines need of podman (no systemd, no cgroup v2 delegation, no ulimits to set).
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
"""
# The machine's CA bundle, lent to the build so pip reaches PyPI through this network's
# TLS-inspecting egress: mounted read-only over the image's own while it builds, never
# stored in a layer. (Debian's pip trusts that file, not a bundled certifi.)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def need(what: str) -> NoReturn:
    message = f"The container test needs {what}; it was not run."
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# --- podman ---------------------------------------------------------------------------


class Podman:
    """``podman --runtime runc …`` with this machine's containers.conf."""

    def __init__(self, podman: str, runc: str, conf: Path) -> None:
        self.argv = [podman, "--runtime", runc]
        self.env = dict(os.environ)
        self.env.setdefault("CONTAINERS_CONF", str(conf))

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        result = subprocess.run(
            [*self.argv, *args], env=self.env, text=True, timeout=timeout, check=False, **kw
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`podman {' '.join(args)}` exited {result.returncode}:\n"
                f"{(result.stdout or '')[-3000:]}\n{(result.stderr or '')[-3000:]}"
            )
        return result

    def exists(self, image: str) -> bool:
        return self("image", "exists", image, check=False).returncode == 0

    def logs(self, container: str) -> str:
        """What the container wrote, stdout and stderr (gradlab logs to stderr)."""
        result = self("logs", container, check=False)
        return result.stdout + result.stderr


def dockerfile_base() -> str:
    """The image the Dockerfile's last stage starts from."""
    return final_stage(dockerfile_instructions(DOCKERFILE.read_text()))[0]


ROOT_LEFTOVERS = ("var/cache/apt/archives", "var/lib/apt/lists")
DEBOOTSTRAP_OPTIONS = ("--variant=minbase", "--include=python3,python3-venv,ca-certificates")


def debian_root_tar(suite: str) -> Path:
    """A tarball of a minimal Debian ``suite`` root with Python 3, bootstrapped once per
    machine (a few minutes, from Debian's mirror) and kept under CACHE, named by a hash of
    what makes it (the suite, debootstrap's options, how it is trimmed): a changed recipe
    bootstraps anew rather than reusing a root made another way."""
    recipe = "\n".join([suite, *DEBOOTSTRAP_OPTIONS, *ROOT_LEFTOVERS])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    tar = CACHE / f"debian-{suite}-minbase-python3-{key}.tar"
    if tar.is_file():
        return tar
    debootstrap = shutil.which("debootstrap") or need("debootstrap (apt-get install debootstrap)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        root = Path(scratch) / "root"
        subprocess.run(
            [debootstrap, *DEBOOTSTRAP_OPTIONS, suite, str(root)],
            check=True,
            capture_output=True,
            timeout=900,
        )
        # As Debian's own images: no downloaded packages, no package lists (95 MB).
        for leftovers in ROOT_LEFTOVERS:
            for path in (root / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = Path(scratch) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        os.replace(partial, tar)  # whole or not at all, should two runs race
    return tar


def ensure_base(podman: Podman, base: str) -> None:
    """Make ``base`` (``debian:<suite>-slim``) exist locally, from the bootstrapped root."""
    if podman.exists(base):
        return
    match = re.fullmatch(r"(?:docker\.io/)?(?:library/)?debian:([a-z]+)(?:-slim)?", base)
    assert match, f"the Dockerfile's base {base} is not a Debian image debootstrap can make"
    with debian_root_tar(match[1]).open("rb") as tar:
        podman("import", "-", base, stdin=tar)
    assert podman.exists(base)


# --- the compose file as podman commands ------------------------------------------------


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}``, with the default: the test's own environment is not
    the lab's."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", value)


def run_options(service: dict[str, Any], env: dict[str, str]) -> list[str]:
    """``podman run`` options for what the compose file says of a service."""
    options = ["--network", "host"]
    if service.get("init"):
        options.append("--init")
    if (service.get("healthcheck") or {}).get("disable"):
        options.append("--no-healthcheck")
    if "stop_signal" in service:
        options += ["--stop-signal", service["stop_signal"]]
    if "stop_grace_period" in service:
        options += ["--stop-timeout", str(int(seconds(service["stop_grace_period"])))]
    for key, value in env.items():
        options += ["--env", f"{key}={value}"]
    return options


@pytest.fixture(scope="module")
def podman() -> Podman:
    podman = shutil.which("podman") or need("podman (apt-get install podman runc debootstrap)")
    runc = shutil.which("runc") or ("/usr/sbin/runc" if Path("/usr/sbin/runc").exists() else None)
    if runc is None:
        need("runc (apt-get install runc)")
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    if not conf.is_file() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    return Podman(podman, runc, conf)


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The image built from the Dockerfile (layers cached by podman between runs)."""
    started = time.monotonic()
    ensure_base(podman, dockerfile_base())
    based = time.monotonic()
    mounts = (
        ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"] if HOST_CA_BUNDLE.is_file() else []
    )
    podman(
        "build",
        "--network", "host",
        "--pull=never",  # the base is the local one
        "--format", "docker",  # keeps HEALTHCHECK (OCI images have none)
        *mounts,
        "--tag", IMAGE,
        "--file", str(DOCKERFILE),
        str(ROOT),
        timeout=1200,
    )  # fmt: skip
    print(f"\nbase image {based - started:.1f} s, build {time.monotonic() - based:.1f} s")
    return IMAGE


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (the containers migrate it), dropped after."""
    with empty_pg_database("gradlab_container") as url:
        yield url


# --- the tests --------------------------------------------------------------------------


def test_the_image_is_debian_12_with_its_python_and_gradlab_installed_for_a_user(podman, image):
    probe = (
        "import os, sys, gradlab; "
        "print(open('/etc/debian_version').read().strip(), sys.version_info[:2], os.getuid(), "
        "os.getcwd(), sys.prefix, gradlab.__file__, sep='|')"
    )
    out = podman("run", "--rm", "--network", "host", image, "python", "-c", probe).stdout
    debian, version, uid, cwd, prefix, where = out.strip().split("|")
    assert debian.startswith("12"), debian
    assert version == "(3, 11)", version
    assert uid != "0", "the image runs as root"
    assert cwd == "/var/lib/gradlab"
    assert where.startswith(f"{prefix}/lib/"), f"gradlab imported from {where}, not the venv"
    assert prefix != "/usr", "gradlab is installed in Debian's own Python, not a venv"

    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
    print(f"\nimage {image}: {size / 1e6:.0f} MB")


def test_the_images_own_command_serves_and_passes_its_healthcheck(podman, image):
    """`docker run gradlab` as the Dockerfile's header says: no arguments, the API on the
    embedded SQLite file, tokens required; the image's HEALTHCHECK (run by hand: podman has
    no systemd timers here) turns healthy, and SIGTERM to PID 1 stops it with exit 0. In its
    own network namespace, so its :8000 is nobody else's."""
    name = f"gradlab-test-{uuid.uuid4().hex[:8]}-image"
    podman("run", "--detach", "--name", name, "--network", "none", image)
    try:

        def healthy() -> bool:
            return podman("healthcheck", "run", name, check=False).returncode == 0

        wait_for(healthy, timeout=90, interval=0.5, what=f"{name}'s HEALTHCHECK")
        podman("stop", name, timeout=60)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0", f"{name} exited {code}:\n{podman.logs(name)[-2000:]}"
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_the_compose_topology_runs_jobs_against_postgresql(podman, image, database):
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    ours = {name: s for name, s in compose.items() if s.get("image") == compose["api"]["image"]}
    assert {"migrate", "api", "worker"} <= set(ours)

    def env(service: dict[str, Any]) -> dict[str, str]:
        values = {k: interpolate(v or "") for k, v in environment(service).items()}
        values["GRADLAB_DATABASE_URL"] = database  # this machine's server, not `postgres`
        return values

    def command(service: dict[str, Any]) -> list[str]:
        argv = as_argv(service.get("command"))
        assert argv, "every gradlab service in the compose file says what it runs"
        return argv

    run_id = uuid.uuid4().hex[:8]
    names: list[str] = []

    def start(service_name: str, argv: list[str], replica: int = 1) -> str:
        name = f"gradlab-test-{run_id}-{service_name}-{replica}"
        service = ours[service_name]
        values = env(service)
        if "GRADLAB_WORKER_METRICS_PORT" in values:  # each replica its own network in compose;
            values["GRADLAB_WORKER_METRICS_PORT"] = str(free_port())  # here they share the host's
        podman("run", "--detach", "--name", name, *run_options(service, values), image, *argv)
        names.append(name)
        return name

    def once(service_name: str, *argv: str) -> str:
        service = ours[service_name]
        options = run_options(service, env(service))
        return podman("run", "--rm", *options, image, *argv, timeout=180).stdout

    try:
        started = time.monotonic()
        out = once("migrate", *command(ours["migrate"]))
        assert f"database at {migrations.head_revision()}" in out
        print(f"\nmigrated in {time.monotonic() - started:.1f} s")

        # Once the migration is done the API and the workers start together (compose's
        # depends_on), and meanwhile the first admin is made as the compose file's comment
        # says: its token is the last line of stdout.
        port = free_port()
        api_argv = command(ours["api"])
        api_argv[api_argv.index("--port") + 1] = str(port)  # host networking: a free one
        start("api", api_argv)
        replicas = int((ours["worker"].get("deploy") or {}).get("replicas", 1))
        assert replicas >= 2
        workers = [start("worker", command(ours["worker"]), i + 1) for i in range(replicas)]
        token = once("migrate", "gradlab", "users", "add", "instructor", "--role", "admin")
        token = token.strip().splitlines()[-1]
        print(f"token made in {time.monotonic() - started:.1f} s")

        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:

            def ready() -> dict[str, Any] | None:
                try:
                    r = http.get("/readyz")
                except httpx.TransportError:
                    return None
                return r.json() if r.status_code == 200 else None

            readiness = wait_for(ready, timeout=120, interval=0.2, what="the API's /readyz")
            print(f"API ready in {time.monotonic() - started:.1f} s")
            assert readiness == {"status": "ready", "revision": migrations.head_revision()}
            assert http.get("/v1/jobs", headers={"Authorization": ""}).status_code == 401

            def worker_up(name: str) -> bool:
                return "worker " in podman.logs(name)

            for name in workers:
                wait_for(lambda n=name: worker_up(n), timeout=60, interval=0.2, what=name)
            print(f"\ntopology up in {time.monotonic() - started:.1f} s")

            softmax = SEEDS["spiral_softmax"]["value"]
            two_layer = {**SEEDS["spiral_two_layer"]["value"], "iterations": 600}
            specs = [softmax, *({**two_layer, "name": f"two-layer-{i}"} for i in range(3))]
            ids = []
            for spec in specs:
                r = http.post("/v1/jobs", json=spec)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])

            for job_id, spec in zip(ids, specs, strict=True):

                def finished(job_id: str = job_id) -> dict[str, Any] | None:
                    job = http.get(f"/v1/jobs/{job_id}").json()
                    return job if job["status"] not in ("queued", "running") else None

                job = wait_for(finished, timeout=180, interval=0.2, what=f"job {job_id}")
                assert job["status"] == "succeeded", job
                columns = http.get(f"/v1/jobs/{job_id}/metrics?format=columns").json()["columns"]
                assert columns["iteration"] == list(range(spec["iterations"]))
                assert columns["loss"][-1] < columns["loss"][0]
            checks = http.get(f"/v1/jobs/{ids[0]}/gradient-checks").json()["checks"]
            assert checks and all(c["passed"] for c in checks)
            assert ready(), "the API stayed ready"
            print(f"jobs done in {time.monotonic() - started:.1f} s")

        ran = {
            name: set(re.findall(r"job (\S+) attempt \d+: succeeded", podman.logs(name)))
            for name in workers
        }
        assert set().union(*ran.values()) == set(ids), ran
        assert all(ran.values()), f"every worker replica should have run a job: {ran}"

        # Stopped as `docker compose down` stops them, all at once: SIGTERM through the
        # init, SIGKILL after the service's grace period. Each must have exited 0 by itself.
        stopping = time.monotonic()
        podman("stop", *names, timeout=120)
        print(f"stopped in {time.monotonic() - stopping:.1f} s")
        for name in names:
            code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
            assert code == "0", f"{name} exited {code}:\n{podman.logs(name)[-2000:]}"
    except BaseException:
        for name in names:
            print(f"--- {name} ---\n{podman.logs(name)[-4000:]}")
        raise
    finally:
        if names:
            podman("rm", "--force", "--time", "0", *names, check=False, timeout=120)
