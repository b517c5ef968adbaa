"""``python -m bench.fifo_worker``: ``gradlab worker`` as it was before fair share — it takes
the oldest queued job whoever owns it. The fair-share benchmark's baseline, and nothing else:
no setting brings FIFO back into the product."""

from __future__ import annotations

import logging
import sys
from typing import Any

from sqlalchemy import Connection, Row, select, update

from store import lifecycle
from store.lifecycle import CLAIMED, jobs
from store.settings import Settings
from store.status import Status
from worker.main import Worker

# The claim of store.lifecycle before fair share, verbatim.
_OLDEST_QUEUED = (
    select(jobs.c.id)
    .where(jobs.c.status == Status.QUEUED)
    .order_by(jobs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
CLAIM_OLDEST = (
    update(jobs)
    .where(jobs.c.id == _OLDEST_QUEUED, jobs.c.status == Status.QUEUED)
    .values(lifecycle.CLAIM_VALUES)
    .returning(*CLAIMED)
)


def claim_oldest(conn: Connection, worker_id: str, lease_seconds: float) -> Row[Any] | None:
    """:func:`store.lifecycle.claim_queued` in FIFO order."""
    return lifecycle.claim_by(conn, CLAIM_OLDEST, {}, worker_id, lease_seconds)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = Worker(Settings())
    worker.queue.claim_queued = claim_oldest
    worker.install_signal_handlers()
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
