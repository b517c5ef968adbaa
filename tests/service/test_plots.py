"""Plots: every endpoint draws a valid PNG and SVG for each model kind, and refuses clearly
(404, 409, 422) where there is nothing to draw."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

import matplotlib.image
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.plots import fit, render
from service.plots import service as plots_service
from service.plots.render import Curve, FittedLine, Regions
from store.accounts import LOCAL

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHECKS = {"every": 10}

SPECS = {
    "linear_line": {
        "name": "line-fit",
        "model": {"kind": "linear_regression"},
        "data": {"kind": "line", "n_samples": 40},
        "optimizer": {"kind": "gd", "learning_rate": 0.5},
        "iterations": 60,
        "gradient_check": CHECKS,
    },
    "logistic_blobs": {
        "model": {"kind": "logistic_regression"},
        "data": {"kind": "blobs", "n_samples": 60, "n_classes": 2},
        "optimizer": {"kind": "gd", "learning_rate": 0.5},
        "iterations": 30,
        "gradient_check": CHECKS,
    },
    "softmax_spiral": {
        "name": "softmax",
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "spiral", "n_per_class": 20},
        "optimizer": {"kind": "gd", "learning_rate": 1.0},
        "l2": 0.001,
        "iterations": 30,
        "gradient_check": CHECKS,
    },
    "mlp_spiral": {
        "model": {"kind": "mlp", "hidden_sizes": [16]},
        "data": {"kind": "spiral", "n_per_class": 20},
        "optimizer": {"kind": "gd", "learning_rate": 1.0},
        "iterations": 30,
        "gradient_check": {**CHECKS, "references": ["numeric", "torch"]},
    },
    "mlp_mse_line": {
        "model": {"kind": "mlp", "hidden_sizes": [8], "activation": "tanh"},
        "loss": "mse",
        "data": {"kind": "line", "n_samples": 40},
        "optimizer": {"kind": "gd", "learning_rate": 0.1, "momentum": 0.9},
        "iterations": 30,
        "gradient_check": CHECKS,
    },
}
BLOBS_5D = {
    "model": {"kind": "softmax_regression"},
    "data": {"kind": "blobs", "n_samples": 30, "n_classes": 3, "n_features": 5},
    "optimizer": {"kind": "gd", "learning_rate": 0.5},
    "iterations": 5,
}
REGRESSION_2D = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "inline", "X": [[0, 1], [1, 0], [1, 1]], "y": [1, 2, 3]},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 5,
}


def submit(client: TestClient, spec: dict) -> str:
    r = client.post("/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def assert_png(r, size: tuple[int, int] | None = None) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(io.BytesIO(r.content), format="png")
    assert image.ndim == 3
    if size is not None:
        assert image.shape[:2] == size
    assert image.std() > 0  # something was drawn
    return image


def assert_svg(r) -> ElementTree.Element:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(r.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert float(root.attrib["width"].removesuffix("pt")) > 0
    return root


def assert_refused(r, status: int, *needles: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    message = r.json()["message"]
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_plot_of_a_trained_job_is_a_valid_png_and_svg(client, drain, kind):
    job_id = submit(client, SPECS[kind])
    assert drain() == {"succeeded": 1}
    base = f"/v1/jobs/{job_id}/plots"

    r = client.get(f"{base}/loss.png")
    assert_png(r, (450, 750))
    assert r.headers["content-disposition"] == f'inline; filename="{job_id}-loss.png"'
    assert_svg(client.get(f"{base}/loss.svg?log=true&max_points=10"))
    assert_png(client.get(f"{base}/fit.png"))
    assert_svg(client.get(f"{base}/fit.svg"))
    assert_png(client.get(f"{base}/gradient-checks.png"), (450, 750))
    assert_svg(client.get(f"{base}/gradient-checks.svg"))


def test_the_fit_uses_the_trained_parameters_on_the_regenerated_data(client, drain):
    line_id = submit(client, {**SPECS["linear_line"], "iterations": 300})
    blobs_id = submit(client, SPECS["logistic_blobs"])
    drain()
    with client.app.state.db.read_session() as session:
        line = fit.picture(fit.load(session, plots_service.get_job(session, line_id, LOCAL)))
        blobs_job = plots_service.get_job(session, blobs_id, LOCAL)
        regions = fit.picture(fit.load(session, blobs_job))
        final_accuracy = blobs_job.final_accuracy
    # The line data is y = 2x + 1 + noise; the fitted line is close to it.
    assert isinstance(line, FittedLine)
    np.testing.assert_allclose(line.pred, 2 * line.grid + 1, atol=0.1)
    assert "ŷ = " in line.label
    # The classes drawn at the training points are the job's own predictions.
    assert isinstance(regions, Regions)
    assert regions.classes.shape == (fit.GRID, fit.GRID)
    assert set(np.unique(regions.classes)) <= {0, 1}
    assert regions.accuracy == pytest.approx(final_accuracy, abs=0.05)
    assert regions.gx[0] < regions.X[:, 0].min() and regions.gx[-1] > regions.X[:, 0].max()


def test_unknown_ids_are_404(client):
    for plot in ("loss", "fit", "gradient-checks"):
        for fmt in ("png", "svg"):
            assert_refused(client.get(f"/v1/jobs/nope/plots/{plot}.{fmt}"), 404, "'nope'")


def test_a_format_other_than_png_or_svg_is_422(client):
    assert client.get("/v1/jobs/nope/plots/loss.jpg").status_code == 422


@pytest.mark.parametrize("spec", [BLOBS_5D, REGRESSION_2D], ids=["blobs-5d", "regression-2d"])
def test_fit_does_not_apply_to_other_shapes_of_data(client, drain, spec):
    job_id = submit(client, spec)
    drain()
    r = client.get(f"/v1/jobs/{job_id}/plots/fit.png")
    features = len(spec["data"]["X"][0]) if "X" in spec["data"] else spec["data"]["n_features"]
    assert_refused(r, 409, job_id, f"on {features} features", "decision regions")
    assert r.json()["type"] == "not_applicable"


def test_a_queued_job_has_an_empty_loss_chart_but_no_fit_or_checks(client):
    job_id = submit(client, SPECS["mlp_spiral"])
    assert_png(client.get(f"/v1/jobs/{job_id}/plots/loss.png"), (450, 750))
    assert_svg(client.get(f"/v1/jobs/{job_id}/plots/loss.svg?log=true"))
    r = client.get(f"/v1/jobs/{job_id}/plots/fit.png")
    assert_refused(r, 409, "queued", "no parameters yet")
    r = client.get(f"/v1/jobs/{job_id}/plots/gradient-checks.svg")
    assert_refused(r, 409, "queued", "no gradient check")


def test_checks_turned_off_are_named_as_the_reason(client, drain):
    job_id = submit(client, {**SPECS["linear_line"], "gradient_check": {"references": []}})
    drain()
    r = client.get(f"/v1/jobs/{job_id}/plots/gradient-checks.png")
    assert_refused(r, 409, "turned off")


def test_compare_overlays_jobs_by_ids(client, drain):
    ids = [submit(client, SPECS[k]) for k in ("linear_line", "logistic_blobs", "mlp_spiral")]
    drain()
    joined = ",".join(ids)
    assert_png(client.get(f"/v1/plots/compare.png?ids={joined}"), (480, 750))
    assert_png(client.get(f"/v1/plots/compare.png?ids={joined}&log=true&max_points=5"))
    assert_svg(client.get(f"/v1/plots/compare.svg?ids={joined}, {ids[0]}"))

    with client.app.state.db.read_session() as session:
        found, _ = plots_service.compared_jobs(session, f"{ids[1]},{ids[0]},{ids[1]}", None, LOCAL)
        curves = plots_service.compare_curves(session, found, 2000)
    assert [job.id for job in found] == [ids[1], ids[0]]
    assert curves[1].label == "line-fit"
    assert curves[0].label == "logistic_regression gd lr=0.5 l2=0"
    assert curves[0].accuracy is not None and curves[1].accuracy is None


def test_compare_refuses_unknown_ids_by_name_and_bad_queries(client, drain):
    known = submit(client, SPECS["linear_line"])
    r = client.get(f"/v1/plots/compare.png?ids={known},ghost-1,ghost-2")
    assert_refused(r, 404, "'ghost-1'", "'ghost-2'")
    assert known not in r.json()["message"]

    for query in ("", f"?ids={known}&sweep=s", "?ids=,,", "?ids=" + ",".join(map(str, range(21)))):
        r = client.get(f"/v1/plots/compare.png{query}")
        assert r.status_code == 422, (query, r.text)
        fields = [d["field"] for d in r.json()["detail"]]
        assert any(f.startswith("query:ids") for f in fields), fields


def test_compare_a_sweep(client, drain):
    base = {**SPECS["softmax_spiral"], "name": None, "iterations": 10}
    grid = {"optimizer.learning_rate": [0.1, 1.0], "l2": [0, 0.01]}
    r = client.post("/v1/sweeps", json={"name": "lr-l2", "base": base, "grid": grid})
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]
    assert_png(client.get(f"/v1/plots/compare.png?sweep={sweep_id}"))  # queued: no points yet
    drain()
    assert_png(client.get(f"/v1/plots/compare.png?sweep={sweep_id}&log=true"), (480, 750))
    assert_svg(client.get(f"/v1/plots/compare.svg?sweep={sweep_id}"))
    assert_refused(client.get("/v1/plots/compare.png?sweep=nope"), 404, "'nope'")


def test_the_plots_are_documented_as_images(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/jobs/{job_id}/plots/loss.{fmt}",
        "/v1/jobs/{job_id}/plots/fit.{fmt}",
        "/v1/jobs/{job_id}/plots/gradient-checks.{fmt}",
        "/v1/plots/compare.{fmt}",
    ):
        op = paths[path]["get"]
        assert op["summary"] and op["description"]
        assert set(op["responses"]["200"]["content"]) >= {"image/png", "image/svg+xml"}
    assert "409" in paths["/v1/jobs/{job_id}/plots/fit.{fmt}"]["get"]["responses"]


def test_the_same_data_gives_the_same_bytes_even_from_many_threads_at_once():
    # No random SVG ids, no timestamps, no shared state trampled by concurrent renders.
    curve = Curve("x", np.arange(50), np.linspace(2.0, 0.1, 50), None, 50, "mse")
    grid = np.linspace(-1, 1, 30)
    classes = (grid[:, None] + grid[None, :] > 0).astype(np.int64)
    regions = Regions(grid, grid, classes, np.zeros((2, 2)), np.array([0, 1]), 2, 1.0)

    def draw(i: int) -> bytes:
        if i % 2:
            return render.regions_chart(regions, "threads", "svg")
        return render.loss_chart(curve, "threads", True, "svg")

    expected = [draw(0), draw(1)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(draw, range(8)))
    assert results == expected * 4


def test_plots_render_at_a_lower_cpu_priority_than_the_api(client):
    """A burst of renders must leave the API process its core: the renderer processes run
    ``NICENESS`` lower (as far as the kernel allows)."""
    from service.plots.renderers import NICENESS

    job_id = submit(client, SPECS["mlp_spiral"])
    assert_png(client.get(f"/v1/jobs/{job_id}/plots/loss.png"), (450, 750))
    pool = client.app.state.renderers._pool
    assert pool is not None and pool._processes
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    for pid in pool._processes:
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(ours + NICENESS, 19)
