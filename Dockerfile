# gradlab: the API (`gradlab serve`) or a worker (`gradlab worker`), from one image.
#   docker build -t gradlab .
#   docker run -p 8000:8000 gradlab    # the API on the embedded SQLite file, no workers
# docker-compose.yml runs it against PostgreSQL with separate worker containers.
# Debian 12 and Debian's own Python 3.11 (a base any Docker user can pull), gradlab in a venv.
FROM debian:bookworm-slim

# A container listens on 0.0.0.0, reachable from the network: accounts and tokens are on
# (`gradlab serve` refuses a non-loopback address with GRADLAB_AUTH=off).
ENV PATH=/opt/gradlab/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRADLAB_AUTH=required \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# bubblewrap: the sandbox students' code runs in (GRADLAB_SANDBOX). Unprivileged, it needs
# user namespaces, which Docker's default seccomp profile refuses: see docker-compose.yml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates bubblewrap \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/gradlab

RUN groupadd --system --gid 10001 gradlab \
    && useradd --system --uid 10001 --gid gradlab --create-home \
       --home-dir /var/lib/gradlab --shell /usr/sbin/nologin gradlab

WORKDIR /src

# Dependencies first, listed from pyproject.toml alone, so that editing the code does not
# reinstall them: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
# The build backend (pyproject's build-system) too: gradlab's own install below builds with
# it (--no-build-isolation) instead of fetching it again on every source change.
RUN python -c "import tomllib; t = tomllib.load(open('pyproject.toml', 'rb')); p = t['project']; print('\n'.join(t['build-system']['requires'] + p['dependencies'] + p['optional-dependencies']['postgres'] + p['optional-dependencies']['datasets']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then gradlab itself (.dockerignore keeps the virtualenv, caches and databases out).
# Without --no-deps pip checks the list above was complete and fills in anything missing.
COPY . ./
RUN pip install --no-cache-dir --no-build-isolation '.[postgres,datasets]' \
    && rm -rf /src/build /src/*.egg-info

# Run from the user's own directory, not from /src: `python -m gradlab` (how `serve` starts
# its workers) must import the installed package, and the default SQLite file
# (sqlite:///./gradlab.db) lands somewhere the user may write.
WORKDIR /var/lib/gradlab
USER 10001:10001

EXPOSE 8000
STOPSIGNAL SIGTERM
# /healthz says the process is up; /readyz (database reachable and migrated) is for
# orchestrators that route traffic. Worker containers disable this check (compose file).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]

CMD ["gradlab", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "0"]
