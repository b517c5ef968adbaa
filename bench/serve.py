"""``python -m bench.serve --port N --reader NAME``: the API as ``gradlab serve --workers 0``
runs it (the database migrated, the same app, the same uvicorn settings), reading
``GET /v1/jobs/{id}``'s row with one of the readers of ``bench.readpaths``."""

from __future__ import annotations

import argparse

import uvicorn

import migrations as migrate
from bench import readpaths
from gradlab.cli import configure_logging
from service.app import create_app
from store.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, choices=[0], default=0, help="always 0")
    parser.add_argument("--reader", choices=list(readpaths.READERS), default="fast")
    args = parser.parse_args(argv)
    configure_logging()  # the access log on, as in `gradlab serve`, so the servers compare fairly
    settings = Settings()
    migrate.upgrade(settings.database_url)
    app = create_app(settings)
    readpaths.install(app.state.db, args.reader, settings)
    config = uvicorn.Config(  # as gradlab.serve.serve
        app,
        host=args.host,
        port=args.port,
        access_log=False,  # the app's own access log (gradlab.access) instead
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
