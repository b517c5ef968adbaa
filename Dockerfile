# gradlab: the API (`gradlab serve`) or a worker (`gradlab worker`), from one image.
#   docker build -t gradlab .
#   docker run -p 8000:8000 gradlab    # the API on the embedded SQLite file, no workers
# docker-compose.yml runs it against PostgreSQL with separate worker containers.
FROM python:3.11-slim

# A container listens on 0.0.0.0, reachable from the network: accounts and tokens are on
# (`gradlab serve` refuses a non-loopback address with GRADLAB_AUTH=off).
ENV PYTHONUNBUFFERED=1 \
    GRADLAB_AUTH=required \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 gradlab \
    && useradd --system --uid 10001 --gid gradlab --create-home \
       --home-dir /var/lib/gradlab --shell /usr/sbin/nologin gradlab

WORKDIR /src

# Dependencies first, listed from pyproject.toml alone, so that editing the code does not
# reinstall them: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres'] + p['optional-dependencies']['datasets']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then gradlab itself (.dockerignore keeps the virtualenv, caches and databases out).
# Without --no-deps pip checks the list above was complete and fills in anything missing.
COPY . ./
RUN pip install --no-cache-dir '.[postgres,datasets]'

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
