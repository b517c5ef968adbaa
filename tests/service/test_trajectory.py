"""The trajectory plot: the parameters' path the worker keeps (``store.paths``) is the path
training takes, from the initial parameters on, and it is drawn over the loss surface: exactly
for two parameters, in the plane of Li et al. for more, several jobs overlaid."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from engine import Trainer
from store import datasets, paths
from store.build import build
from store.db import Database
from store.spec import JobSpec
from tests.conftest import make_settings

LINE = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 50},
    "init": {"kind": "given", "params": {"W": [[-1.0]], "b": [3.0]}},
    "optimizer": {"kind": "gd", "learning_rate": 0.2},
    "iterations": 40,
}
MLP = {
    "model": {"kind": "mlp", "hidden_sizes": [6]},
    "data": {"kind": "spiral", "n_per_class": 20},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 30,
}


@pytest.fixture
def settings(sqlite_url: str):
    """SQLite only: the path is written through the queue's upsert, as every flush's chunk
    is (tested on both); this keeps the module's three trainings and renders to one run."""
    return make_settings(sqlite_url)


def stored_path(settings, job_id: str) -> tuple[np.ndarray, np.ndarray]:
    db = Database(settings.database_url, settings)
    try:
        with db.read_session() as session:
            return paths.read(session, job_id)
    finally:
        db.dispose()


def replayed(spec: dict) -> np.ndarray:
    """Every iteration's parameters, by training the spec here."""
    built = build(JobSpec.model_validate(datasets.resolve(spec, None)))
    trainer = Trainer(
        built.model,
        built.optimizer,
        built.data.X,
        built.data.y,
        iterations=built.iterations,
        l2=built.l2,
        params=built.params,
    )
    return np.array([paths.flat(trainer.params) for _ in trainer])


def test_the_kept_path_is_trainings_from_the_initial_parameters_and_is_drawn(
    client, settings, drain
):
    line = client.post("/v1/jobs", json=LINE).json()
    mlp = client.post("/v1/jobs", json=MLP).json()
    slower = client.post(
        "/v1/jobs", json={**MLP, "optimizer": {"kind": "gd", "learning_rate": 0.3}}
    ).json()
    early = client.get(f"/v1/jobs/{line['id']}/plots/trajectory.png")
    assert early.status_code == 409 and "no parameters yet" in early.json()["message"]
    assert drain()["succeeded"] == 3

    iterations, params = stored_path(settings, line["id"])
    np.testing.assert_array_equal(iterations, np.arange(40))  # every iteration: 2 parameters
    np.testing.assert_array_equal(params[0], [-1.0, 3.0])  # starts at the initial parameters
    np.testing.assert_allclose(params, replayed(line["spec"]), rtol=1e-12)
    _, mlp_params = stored_path(settings, mlp["id"])
    np.testing.assert_allclose(mlp_params, replayed(mlp["spec"]), rtol=1e-12)

    png = client.get(f"/v1/jobs/{line['id']}/plots/trajectory.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = client.get(f"/v1/jobs/{mlp['id']}/plots/trajectory.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(svg.content).tag.endswith("svg")
    both = client.get(
        f"/v1/jobs/{mlp['id']}/plots/trajectory.svg", params={"compare": slower["id"]}
    )
    assert both.status_code == 200 and ET.fromstring(both.content).tag.endswith("svg")
    mixed = client.get(f"/v1/jobs/{mlp['id']}/plots/trajectory.png", params={"compare": line["id"]})
    assert mixed.status_code == 422
    assert "differs" in mixed.json()["message"] and "model" in mixed.json()["message"]
    # A deleted job's path goes with it.
    assert client.delete(f"/v1/jobs/{line['id']}").status_code == 204
    assert len(stored_path(settings, line["id"])[0]) == 0


def test_the_surface_axes_are_w_and_b_or_li_et_als_plane():
    from service.plots.trajectory import Landscape, Path, directions, surface

    built = build(JobSpec.model_validate(datasets.resolve(LINE, None)))
    kept = replayed(LINE)
    land = Landscape(built.model, built.data, 0.0, [Path("a", np.arange(40), kept)], "t")
    s = surface(land)
    assert s.exact and s.axes == ("w", "b")
    np.testing.assert_array_equal(s.points[0], kept)  # the path itself, no projection
    # The surface is the model's loss at (w, b), and the path descends it.
    j, i = len(s.ys) // 2, len(s.xs) // 3
    at = {"W": np.array([[s.xs[i]]]), "b": np.array([s.ys[j]])}
    assert s.loss[j, i] == pytest.approx(built.model.loss(at, built.data.X, built.data.y, 0.0))

    mlp = build(JobSpec.model_validate(datasets.resolve(MLP, None)))
    path = replayed(MLP)
    d = directions(mlp.model, path[0], path[-1])
    np.testing.assert_allclose(d[0], path[-1] - path[0])
    assert abs(d[0] @ d[1]) < 1e-9 * np.linalg.norm(d[0]) * np.linalg.norm(d[1])
    s = surface(Landscape(mlp.model, mlp.data, 0.0, [Path("m", np.arange(30), path)], "t"))
    assert not s.exact
    np.testing.assert_allclose(s.points[0][0], [0.0, 0.0], atol=1e-12)  # θ₀ is the origin
    np.testing.assert_allclose(s.points[0][-1], [1.0, 0.0], atol=1e-9)  # θ_T is α = 1


def test_the_path_is_bounded_whatever_the_job():
    assert paths.every(40, 2) == 1
    assert paths.every(500_000, 2) == 1  # every iteration of a long 2-parameter run
    k = paths.every(1_000_000, 50_000)
    assert (1_000_000 // k) * 50_000 <= paths.MAX_PATH_VALUES
    assert paths.kept(0, k, 10**6 - 1) and paths.kept(10**6 - 1, k, 10**6 - 1)
