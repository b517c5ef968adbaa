"""POST /v1/gradient-checks: a student's gradients, written here the way students write them
(CS231n's softmax and 2-layer net, the regression exercises), slips and all, posted as
numbers. Each slip gets its diagnosis; every seed exercise's right answer passes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from engine import make_dataset
from tests.conftest import make_settings

SOFTMAX = {
    "model": {"kind": "softmax_regression"},
    "loss": "cross_entropy",
    "l2": 0.001,
    "data": {"kind": "spiral", "n_per_class": 100, "n_classes": 3},
}
TWO_LAYER = {**SOFTMAX, "model": {"kind": "mlp", "hidden_sizes": [100], "activation": "relu"}}
SQUARE = {  # W is 3 × 3: a transpose keeps its shape
    **SOFTMAX,
    "data": {"kind": "blobs", "n_samples": 90, "n_classes": 3, "n_features": 3},
}


def data_of(exercise: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The exercise's data, from the same generator the server uses."""
    d = exercise["data"]
    data = make_dataset(d["kind"], **{k: v for k, v in d.items() if k != "kind"})
    return data.X, data.y


def random_params(shapes: dict[str, tuple[int, ...]], scale: float = 0.5, seed: int = 7):
    rng = np.random.default_rng(seed)
    return {name: scale * rng.standard_normal(shape) for name, shape in shapes.items()}


# --- the students' code -----------------------------------------------------------------------


def softmax_student(P, X, y, reg, slip=None):
    """The notes' softmax classifier: loss and gradients, with one slip."""
    W, b = P["W"], P["b"]
    N, K = X.shape[0], W.shape[1]
    y = y.astype(int)
    scores = X @ W + b
    if slip != "unshifted":
        scores = scores - scores.max(axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / exp_scores.sum(axis=1, keepdims=True)
    loss = -np.log(probs[range(N), y]).mean() + 0.5 * reg * np.sum(W * W)
    dscores = probs.copy()
    if slip == "last_class_skipped":
        for i in range(N):
            if y[i] < K - 1:
                dscores[i, y[i]] -= 1
    elif slip != "no_minus_one":
        dscores[range(N), y] -= 1
    if slip != "summed":
        dscores /= N
    if slip == "flipped":  # 1 − p at the correct class
        dscores = -dscores
    if slip == "doubled":
        dscores *= 2
    dW = X.T @ dscores
    if slip == "wrong_feature_row":
        dW[1] = X[:, 0] @ dscores
    db = dscores.sum(axis=0, keepdims=slip == "keepdims")
    dW = dW + {"no_l2": 0.0, "l2_twice": 2.0}.get(slip, 1.0) * reg * W
    if slip == "transposed":  # derived for scores = W·x: dscores.T·X + reg·W.T
        dW = dscores.T @ X + reg * W.T
    if slip == "l2_on_b":
        db = db + reg * b
    return loss, {"W": dW, "b": db}


def two_layer_student(P, X, y, reg, slip=None):
    """The notes' 2-layer ReLU net (their W, b, W2, b2 are gradlab's W1, b1, W2, b2)."""
    W, b, W2, b2 = P["W1"], P["b1"], P["W2"], P["b2"]
    N = X.shape[0]
    y = y.astype(int)
    hidden_layer = np.maximum(0, X @ W + b)
    scores = hidden_layer @ W2 + b2
    exp_scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs = exp_scores / exp_scores.sum(axis=1, keepdims=True)
    loss = -np.log(probs[range(N), y]).mean()
    loss += 0.5 * reg * np.sum(W * W) + 0.5 * reg * np.sum(W2 * W2)
    dscores = probs
    dscores[range(N), y] -= 1
    if slip != "summed":
        dscores /= N
    dW2 = hidden_layer.T @ dscores
    db2 = dscores.sum(axis=0)
    dhidden = dscores @ W2.T
    dhidden[hidden_layer <= 0] = 0
    dW = X.T @ dhidden
    db = dhidden.sum(axis=0)
    dW2 += reg * W2
    dW += reg * W
    return loss, {"W1": dW, "b1": db, "W2": dW2, "b2": db2}


def regression_student(loss_name):
    def student(P, X, y, reg, slip=None):
        W, b = P["W"], P["b"]
        N = X.shape[0]
        r = (X @ W + b).ravel() - y
        if loss_name == "mse":
            loss, dr = np.mean(r**2), 2 * r / N
        else:  # mae
            loss, dr = np.mean(np.abs(r)), np.sign(r) / N
        dW = X.T @ dr[:, None] + reg * W
        return loss + 0.5 * reg * np.sum(W * W), {"W": dW, "b": np.array([dr.sum()])}

    return student


def logistic_student(P, X, y, reg, slip=None):
    W, b = P["W"], P["b"]
    N = X.shape[0]
    z = (X @ W + b).ravel()
    loss = np.mean(np.logaddexp(0, z) - y * z) + 0.5 * reg * np.sum(W * W)
    dz = (1 / (1 + np.exp(-z)) - y) / N
    return loss, {"W": X.T @ dz[:, None] + reg * W, "b": np.array([dz.sum()])}


# --- posting them ----------------------------------------------------------------------------


def body(exercise, params, grads, **extra) -> dict[str, Any]:
    listed = {k: np.asarray(v).tolist() for k, v in grads.items()}
    return {
        **exercise,
        "params": {k: v.tolist() for k, v in params.items()},
        "gradients": listed,
        **extra,
    }


def post(client, payload: dict[str, Any]):
    # json.dumps writes NaN as the NaN token, as Python and JavaScript clients do
    return client.post(
        "/v1/gradient-checks",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json"},
    )


def check(client, exercise, student, params, slip=None, **extra) -> dict[str, Any]:
    X, y = data_of(exercise)
    loss, grads = student(params, X, y, exercise.get("l2", 0.0), slip)
    r = post(client, body(exercise, params, grads, loss_value=float(loss), **extra))
    assert r.status_code == 200, r.text
    return r.json()


SOFTMAX_SHAPES = {"W": (2, 3), "b": (3,)}
SLIPS = [
    # slip, tensor, code, factor
    (None, "W", "correct", None),
    ("doubled", "W", "scaled", 2.0),
    ("doubled", "b", "scaled", 2.0),
    ("flipped", "W", "sign_flipped", None),
    ("summed", "W", "not_averaged", 300.0),
    ("summed", "b", "not_averaged", 300.0),
    ("transposed", "W", "transposed", None),
    ("no_l2", "W", "missing_l2", None),
    ("l2_on_b", "b", "l2_on_bias", None),
    ("l2_twice", "W", "l2_scaled", 2.0),
    ("keepdims", "b", "wrong_shape", None),
    ("wrong_feature_row", "W", "partial", None),
    ("last_class_skipped", "W", "partial", None),
    ("no_minus_one", "W", "other", None),
]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("slip", "tensor", "code", "factor"), SLIPS)
def test_each_slip_in_the_softmax_gets_its_diagnosis(client, slip, tensor, code, factor):
    answer = check(client, SOFTMAX, softmax_student, random_params(SOFTMAX_SHAPES), slip)
    entry = answer["parameters"][tensor]
    assert entry["diagnosis"]["code"] == code, entry["diagnosis"]
    assert entry["diagnosis"].get("factor") == factor
    assert entry["passed"] is (code == "correct")
    assert answer["passed"] is (slip is None)
    assert entry["diagnosis"]["message"].startswith(("d", "your d"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_untouched_tensor_of_a_slip_stays_correct(client):
    answer = check(client, SOFTMAX, softmax_student, random_params(SOFTMAX_SHAPES), "no_l2")
    assert answer["parameters"]["b"]["diagnosis"]["code"] == "correct"  # L2 never touches b
    assert answer["parameters"]["b"]["passed"] is True
    assert answer["passed"] is False


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_partial_names_the_wrong_row_or_class(client):
    params = random_params(SOFTMAX_SHAPES)
    row = check(client, SOFTMAX, softmax_student, params, "wrong_feature_row")
    assert row["parameters"]["W"]["diagnosis"]["rows"] == [1]
    assert "row 1 (feature 1)" in row["parameters"]["W"]["diagnosis"]["message"]
    klass = check(client, SOFTMAX, softmax_student, params, "last_class_skipped")
    assert klass["parameters"]["W"]["diagnosis"]["columns"] == [2]
    assert "class 2" in klass["parameters"]["W"]["diagnosis"]["message"]
    assert klass["parameters"]["b"]["diagnosis"]["code"] == "partial"
    assert klass["parameters"]["b"]["diagnosis"]["indices"] == [[2]]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_transposed_square_gradient_is_found_by_its_values(client):
    params = random_params({"W": (3, 3), "b": (3,)})
    answer = check(client, SQUARE, softmax_student, params, "transposed")
    assert answer["parameters"]["W"]["diagnosis"]["code"] == "transposed"
    assert answer["parameters"]["W"]["max_relative_error"] > 1e-3  # same shape: compared


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_wrong_shape_is_a_verdict_naming_both_shapes(client):
    params = random_params(SOFTMAX_SHAPES)
    answer = check(client, SOFTMAX, softmax_student, params, "transposed")
    W = answer["parameters"]["W"]
    assert W["diagnosis"]["code"] == "transposed" and W["passed"] is False
    assert "(3, 2)" in W["diagnosis"]["message"] and "(2, 3)" in W["diagnosis"]["message"]
    assert "its transpose is right" in W["diagnosis"]["message"]
    assert W["max_relative_error"] is None and W["checked"] == 0 and W["total"] == 6
    assert answer["taylor"]["available"] is False
    b = check(client, SOFTMAX, softmax_student, params, "keepdims")["parameters"]["b"]
    assert "(1, 3)" in b["diagnosis"]["message"] and "(3,)" in b["diagnosis"]["message"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_overflowing_softmax_is_not_finite(client):
    # W large enough that exp(scores) overflows without the max shift; the engine's is stable
    params = {"W": np.array([[900.0, -900.0, 5.0], [-700.0, 800.0, 1.0]]), "b": np.zeros(3)}
    X, y = data_of(SOFTMAX)
    with np.errstate(all="ignore"):
        _, grads = softmax_student(params, X, y, 0.001, "unshifted")
    assert np.isnan(grads["W"]).any()
    r = post(client, body(SOFTMAX, params, grads))
    assert r.status_code == 200, r.text
    W = r.json()["parameters"]["W"]
    assert W["diagnosis"]["code"] == "not_finite" and W["passed"] is False
    assert W["max_relative_error"] is None  # infinite, shown as null
    # null is read as NaN too (gradlab's own JSON writes non-finite numbers as null)
    listed = body(SOFTMAX, random_params(SOFTMAX_SHAPES), {"W": [[None] * 3] * 2, "b": [0] * 3})
    assert post(client, listed).json()["parameters"]["W"]["diagnosis"]["code"] == "not_finite"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_loss_value_is_compared_and_diagnosed(client):
    params = random_params(SOFTMAX_SHAPES)
    X, y = data_of(SOFTMAX)
    loss, grads = softmax_student(params, X, y, 0.001)
    data_loss = loss - 0.5 * 0.001 * np.sum(params["W"] ** 2)
    for value, code in ((loss, "correct"), (data_loss, "missing_l2"), (300 * data_loss, None)):
        answer = post(client, body(SOFTMAX, params, grads, loss_value=float(value))).json()
        assert answer["loss"]["yours"] == float(value)
        assert answer["loss"]["reference"] == pytest.approx(loss, rel=1e-12)
        if code is not None:
            assert answer["loss"]["diagnosis"]["code"] == code
        assert answer["loss"]["passed"] is (code == "correct")
        assert answer["passed"] is (code == "correct")
    summed = post(client, body(SOFTMAX, params, grads, loss_value=float(300 * loss))).json()
    assert summed["loss"]["diagnosis"] == {
        "code": "not_averaged",
        "message": "your loss is the sum over the m = 300 examples where the mean belongs.",
        "factor": 300.0,
    }
    without = post(client, body(SOFTMAX, params, grads)).json()
    assert without["loss"]["yours"] is None and without["loss"]["passed"] is None
    assert without["passed"] is True


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_2_layer_net_as_the_notes_write_it_passes_and_its_summed_slip_is_named(client):
    params = random_params({"W1": (2, 100), "b1": (100,), "W2": (100, 3), "b2": (3,)}, 0.1)
    right = check(client, TWO_LAYER, two_layer_student, params)
    assert right["passed"] is True, right
    assert right["taylor"]["passed"] is True
    assert right["taylor"]["slope"] == pytest.approx(2.0, abs=0.1)
    summed = check(client, TWO_LAYER, two_layer_student, params, "summed")
    codes = {name: t["diagnosis"]["code"] for name, t in summed["parameters"].items()}
    assert codes == dict.fromkeys(params, "not_averaged")
    assert summed["taylor"]["passed"] is False
    assert summed["taylor"]["slope"] == pytest.approx(1.0, abs=0.1)


SEED_STUDENTS = {
    "line_mse": regression_student("mse"),
    "line_mae": regression_student("mae"),
    "blobs_logistic": logistic_student,
    "newton_logistic": logistic_student,
    "spiral_softmax": softmax_student,
    "spiral_two_layer": two_layer_student,
    "digits_softmax": softmax_student,
    "breast_cancer_logistic": logistic_student,
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_right_gradients_of_every_seed_exercise_pass(client):
    examples = client.get("/v1/jobs/examples").json()
    assert set(examples) == set(SEED_STUDENTS)
    for name, example in examples.items():
        spec = example["value"]
        exercise = {k: spec[k] for k in ("model", "loss", "data") if k in spec}
        exercise["l2"] = spec.get("l2", 0.0)
        X, y = data_of(exercise)
        if spec["model"]["kind"] == "mlp":
            shapes = {"W1": (2, 100), "b1": (100,), "W2": (100, 3), "b2": (3,)}
        else:
            k = int(y.max()) + 1 if spec["model"]["kind"] == "softmax_regression" else 1
            shapes = {"W": (X.shape[1], k), "b": (k,)}
        answer = check(client, exercise, SEED_STUDENTS[name], random_params(shapes, 0.1))
        assert answer["passed"] is True, (name, answer)
        assert all(t["diagnosis"]["code"] == "correct" for t in answer["parameters"].values())
        assert answer["loss"]["passed"] is True
        assert answer["taylor"]["passed"] is True, (name, answer["taylor"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_answers_figures_are_a_job_checks_and_nothing_is_stored(client):
    params = random_params(SOFTMAX_SHAPES)
    answer = check(client, SOFTMAX, softmax_student, params, "wrong_feature_row")
    W = answer["parameters"]["W"]
    X, y = data_of(SOFTMAX)
    _, right = softmax_student(params, X, y, 0.001)
    _, wrong = softmax_student(params, X, y, 0.001, "wrong_feature_row")
    i, j = W["worst_index"]
    assert i == 1
    assert W["analytic"] == pytest.approx(wrong["W"][i, j], rel=1e-12)
    assert W["numeric"] == pytest.approx(right["W"][i, j], rel=1e-9)
    assert W["checked"] == W["total"] == 6 and W["kinks"] == {"count": 0, "indices": []}
    assert client.get("/v1/jobs").json()["jobs"] == []


def _problems(r) -> set[str]:
    assert r.status_code == 422, r.text
    return {d["field"] for d in r.json()["detail"]}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_missing_extra_and_non_numeric_tensors_are_422s_naming_the_field(client):
    params = random_params(SOFTMAX_SHAPES)
    X, y = data_of(SOFTMAX)
    _, grads = softmax_student(params, X, y, 0.001)
    good = body(SOFTMAX, params, grads)
    assert post(client, {**good, "gradients": {"W": good["gradients"]["W"]}}).status_code == 422
    assert _problems(post(client, {**good, "gradients": {"W": good["gradients"]["W"]}})) == {
        "gradients.b"
    }
    extra = {**good["gradients"], "W2": [[1.0]]}
    assert _problems(post(client, {**good, "gradients": extra})) == {"gradients.W2"}
    text = {**good["gradients"], "b": ["a", 1, 2]}
    assert all(
        f.startswith("gradients.b") for f in _problems(post(client, {**good, "gradients": text}))
    )
    ragged = {**good["gradients"], "W": [[1.0, 2.0, 3.0], [1.0]]}
    assert _problems(post(client, {**good, "gradients": ragged})) == {"gradients.W"}
    assert _problems(post(client, {**good, "params": {"W": [[1.0] * 3] * 2}})) == {"params"}
    wrong = {**good["params"], "W": [[1.0, 2.0]] * 2}
    assert _problems(post(client, {**good, "params": wrong})) == {"params.W"}
    assert _problems(post(client, {**good, "loss": "mse"})) == {"loss"}
    assert _problems(post(client, {**good, "optimizer": {"kind": "gd"}})) == {"optimizer"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_params_where_the_loss_overflows_are_a_422(client):
    huge = {"W": [[1e300] * 3] * 2, "b": [0.0] * 3}
    payload = {**SOFTMAX, "params": huge, "gradients": huge}
    assert _problems(post(client, payload)) == {"params"}


def test_the_work_of_one_call_is_bounded_by_the_setting(sqlite_url):
    from fastapi.testclient import TestClient

    from service.app import create_app

    settings = make_settings(sqlite_url, max_gradient_check_work=1_000)
    params = random_params(SOFTMAX_SHAPES)
    X, y = data_of(SOFTMAX)
    _, grads = softmax_student(params, X, y, 0.001)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        r = post(client, body(SOFTMAX, params, grads))  # 300 rows × 9 parameters
        assert _problems(r) == {"data.n_per_class"}
        assert "GRADLAB_MAX_GRADIENT_CHECK_WORK" in r.json()["message"]
        small = {**SOFTMAX, "data": {**SOFTMAX["data"], "n_per_class": 30}}
        X, y = data_of(small)
        _, grads = softmax_student(params, X, y, 0.001)
        assert post(client, body(small, params, grads)).status_code == 200


def test_a_built_in_job_records_a_taylor_check(client, drain):
    for model, iterations in (({"kind": "softmax_regression"}, 50), (TWO_LAYER["model"], 20)):
        spec = {
            **SOFTMAX,
            "model": model,
            "optimizer": {"kind": "gd", "learning_rate": 1.0},
            "iterations": iterations,
            "gradient_check": {"references": ["numeric", "taylor"]},
        }
        r = client.post("/v1/jobs", json=spec)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        assert drain() == {"succeeded": 1}
        checks = client.get(f"/v1/jobs/{job_id}/gradient-checks").json()["checks"]
        taylor = [c for c in checks if c["reference"] == "taylor"]
        assert [c["iteration"] for c in taylor] == [0, iterations - 1]
        for c in taylor:
            assert c["passed"] is True, c
            assert c["slope"] == pytest.approx(2.0, abs=0.1)
            assert len(c["steps"]) == len(c["residuals"]) == 5
            assert c["parameters"] == {} and c["rtol"] is None
        assert client.get(f"/v1/jobs/{job_id}").json()["gradient_checks_passed"]
