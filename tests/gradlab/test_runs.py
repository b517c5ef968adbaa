"""The notebook's run logger against the app (in process, through the test client's
transport; the CLI's tests run a real `gradlab serve`): points logged in a loop arrive
once each in background batches, also when answers are lost and batches are sent again; the
run ends succeeded (or failed from an exception); a recipe links it to its reference run."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

import migrations as migrate
from gradlab.client import Client
from gradlab.client.runs import RunError, start_run
from service.app import create_app
from tests.conftest import make_settings

RECIPE = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 50,
}


BASE = "http://localhost"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app on SQLite, without workers: reference runs stay queued."""
    url = f"sqlite:///{tmp_path_factory.mktemp('runs') / 'gradlab.db'}"
    migrate.upgrade(url)
    with TestClient(create_app(make_settings(url)), base_url=BASE) as c:
        yield c


class LosingAnswers(httpx.BaseTransport):
    """Sends every request, but loses the answer of every other POST of points: the client
    cannot tell whether they were stored, and must send them again."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.posts = self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/metrics"):
            self.posts += 1
            if self.posts % 2:
                response.read()
                self.lost += 1
                raise httpx.ReadError("the answer was lost", request=request)
        return response


def losses(app: TestClient, run_id: str) -> list[float]:
    r = app.get(f"/v1/jobs/{run_id}/metrics", params={"format": "columns"})
    return r.json()["columns"]["loss"]


def test_a_loop_logs_in_background_batches_each_point_once_despite_lost_answers(app):
    transport = LosingAnswers(app._transport)
    with Client(BASE, transport=transport) as client:
        run = start_run(client, name="my loop", batch_size=100, flush_seconds=0.05)
        want = [1.0 / (i + 1) for i in range(450)]
        for i, loss in enumerate(want):
            run.log(i, loss=loss, accuracy=0.5)
        with pytest.raises(ValueError, match="expected 450"):
            run.log(452, loss=1.0)
        job = run.finish()
    assert job["status"] == "succeeded" and job["iterations_done"] == 450
    assert transport.lost >= 3  # answers were lost, and their batches sent again
    assert losses(app, run.id) == want
    assert run.finish() is job  # finishing twice is the same job


def test_an_exception_ends_the_run_failed_and_a_recipe_links_its_reference(app):
    with Client(BASE, transport=app._transport) as client:
        run = client.start_run(name="broken", recipe=RECIPE, flush_seconds=0.05)
        with pytest.raises(ZeroDivisionError), run:
            run.log(0, loss=2.0)
            run.log(1, loss=1 / 0)
        job = client.job(run.id)
        assert job["status"] == "failed" and job["iterations_done"] == 1
        assert job["reference"]["job_id"]
        assert client.reference(run.id)["status"] == "queued"  # no worker here

        # A point the server refuses surfaces at the next log/flush/finish.
        other = start_run(client, recipe=RECIPE, flush_seconds=0.05)
        client.append_metrics(other.id, [{"iteration": 0, "loss": 5.0}])  # another sender
        other.log(0, loss=4.0)
        with pytest.raises(RunError, match="Iteration 0 is stored already"):
            other.flush()
