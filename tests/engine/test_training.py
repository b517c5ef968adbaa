"""The trainer end to end: convergence, the CS231n walk-through, determinism, resuming,
agreement with the literal seed loops, divergence."""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import engine as ml
from engine.seeds import softmax_seed, two_layer_seed


def losses(records: list[ml.IterationRecord]) -> np.ndarray:
    return np.array([r.loss for r in records])


def test_linear_regression_by_gd_on_mse_reaches_the_least_squares_fit():
    data = ml.line(n_samples=50, slope=-3.0, intercept=0.5, noise=0.3, seed=4)
    model = ml.make_model("linear_regression", n_features=1)
    trainer = ml.Trainer(
        model, ml.make_optimizer("gd", learning_rate=0.5), data.X, data.y, iterations=400
    )
    records = trainer.run()

    A = np.hstack([data.X, np.ones((50, 1))])
    (w, b), *_ = np.linalg.lstsq(A, data.y, rcond=None)
    assert_allclose(trainer.params["W"], [[w]], rtol=1e-10)
    assert_allclose(trainer.params["b"], [b], rtol=1e-10)
    assert records[-1].grad_norm < 1e-10
    assert records[-1].accuracy is None
    assert np.all(np.diff(losses(records)) <= 1e-15)  # a convex quadratic: never goes up


def test_linear_regression_by_newton_is_one_step():
    data = ml.line(seed=1)
    model = ml.make_model("linear_regression", n_features=1, loss="half_mse")
    # Undamped, one Newton step solves the normal equations of a quadratic exactly.
    records = ml.Trainer(
        model, ml.make_optimizer("newton", damping=0.0), data.X, data.y, iterations=2
    ).run()
    assert records[1].grad_norm < 1e-12


def test_logistic_regression_by_newton_reaches_the_optimum_gd_approaches():
    data = ml.blobs(n_samples=200, n_classes=2, cluster_std=2.5, center_box=2.0, seed=3)
    model = ml.make_model("logistic_regression", n_features=2)

    newton = ml.Trainer(
        model, ml.make_optimizer("newton"), data.X, data.y, iterations=8, params=None
    )
    newton_records = newton.run()
    assert newton_records[-1].grad_norm < 1e-8  # a handful of iterations
    assert newton_records[0].loss == pytest.approx(math.log(2), abs=1e-3)

    gd = ml.Trainer(
        model, ml.make_optimizer("gd", learning_rate=1.0), data.X, data.y, iterations=3000
    )
    gd_records = gd.run()
    optimum = newton_records[-1].loss
    assert gd_records[-1].loss >= optimum - 1e-12
    assert gd_records[-1].loss == pytest.approx(optimum, abs=1e-9)
    for name in ("W", "b"):
        assert_allclose(gd.params[name], newton.params[name], rtol=1e-4, atol=1e-6)
    # The two code paths agree at the optimum: the gradient vanishes in both.
    _, grads = model.loss_and_grads(gd.params, data.X, model.check_targets(data.y), 0.0)
    assert max(np.abs(g).max() for g in grads.values()) < 1e-4


def test_softmax_regression_by_newton_converges():
    data = ml.blobs(n_samples=150, n_classes=3, cluster_std=2.0, center_box=3.0, seed=2)
    model = ml.make_model("softmax_regression", n_features=2, n_classes=3)
    records = ml.Trainer(
        model, ml.make_optimizer("newton"), data.X, data.y, iterations=10, l2=1e-3
    ).run()
    assert records[-1].grad_norm < 1e-8
    assert records[-1].loss < records[0].loss


def test_cs231n_softmax_walk_through(spiral_data):
    model = ml.make_model("softmax_regression", n_features=2, n_classes=3)
    trainer = ml.Trainer(
        model,
        ml.make_optimizer("gd", learning_rate=1.0),
        spiral_data.X,
        spiral_data.y,
        iterations=200,
        l2=1e-3,
    )
    records = trainer.run()
    assert records[0].loss == pytest.approx(math.log(3), abs=2e-3)
    assert records[0].iteration == 0 and records[-1].iteration == 199
    predicted = model.predict(trainer.params, spiral_data.X).argmax(axis=1)
    accuracy = np.mean(predicted == spiral_data.y)
    assert 0.45 <= accuracy <= 0.60  # the notes: "about 49%" - a line cannot cut a spiral
    assert records[-1].loss == pytest.approx(0.75, abs=0.05)  # the notes end near 0.786


def test_cs231n_two_layer_net_passes_95_percent(spiral_data):
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[100])
    trainer = ml.Trainer(
        model,
        ml.make_optimizer("gd", learning_rate=1.0),
        spiral_data.X,
        spiral_data.y,
        iterations=10_000,
        l2=1e-3,
    )
    best = 0.0
    for record in trainer:
        assert record.accuracy is not None
        best = max(best, record.accuracy)
        if best > 0.95:
            break
    assert best > 0.95, f"training accuracy peaked at {best}"
    # the recorded accuracy is that of the forward pass at trainer.params
    probabilities = model.predict(trainer.params, spiral_data.X)
    assert np.mean(probabilities.argmax(axis=1) == spiral_data.y) == record.accuracy


def test_the_loss_series_matches_the_literal_seed_loops(spiral_data):
    X, y = spiral_data.X, spiral_data.y.astype(np.uint8)

    softmax = ml.make_model("softmax_regression", n_features=2, n_classes=3)
    params = softmax.init_params(seed=11)
    seed_losses, seed_params = softmax_seed(X, y, params["W"], params["b"], 1.0, 1e-3, 300)
    trainer = ml.Trainer(
        softmax, ml.make_optimizer("gd", learning_rate=1.0), X, y,
        iterations=300, l2=1e-3, params=params,
    )  # fmt: skip
    assert_allclose(losses(trainer.run()), seed_losses, rtol=1e-12)
    assert_allclose(trainer.params["W"], seed_params["W"], rtol=1e-11)
    assert_allclose(trainer.params["b"], seed_params["b"].ravel(), rtol=1e-11, atol=1e-15)

    net = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[100])
    params = net.init_params(seed=11)
    # Step size 1.0 makes this net's late training chaotic (the loss oscillates), which
    # amplifies rounding differences; over the first 300 iterations they stay ~1e-15.
    seed_losses, _ = two_layer_seed(
        X, y, params["W1"], params["b1"], params["W2"], params["b2"], 1.0, 1e-3, 300
    )
    trainer = ml.Trainer(
        net, ml.make_optimizer("gd", learning_rate=1.0), X, y,
        iterations=300, l2=1e-3, params=params,
    )  # fmt: skip
    assert_allclose(losses(trainer.run()), seed_losses, rtol=1e-12)


def run_losses(**options) -> list[float]:
    data = ml.blobs(n_samples=90, n_classes=3, seed=5)
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[8])
    optimizer = ml.make_optimizer(**options)
    params = model.init_params(seed=9)
    trainer = ml.Trainer(model, optimizer, data.X, data.y, iterations=40, l2=1e-3, params=params)
    return [r.loss for r in trainer]


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "gd", "learning_rate": 0.5},
        {"kind": "gd", "learning_rate": 0.5, "momentum": 0.9},
        {"kind": "sgd", "learning_rate": 0.5, "batch_size": 16, "seed": 3},
    ],
)
def test_the_same_seed_gives_a_bit_identical_loss_series(options):
    assert run_losses(**options) == run_losses(**options)


def test_sgd_shuffles_by_its_seed():
    assert run_losses(kind="sgd", batch_size=16, seed=3) != run_losses(
        kind="sgd", batch_size=16, seed=4
    )


def test_sgd_batches_cover_each_epoch_once_and_depend_only_on_seed_and_iteration():
    optimizer = ml.make_optimizer("sgd", batch_size=4, seed=7)
    m = 10  # 3 batches per epoch: 4, 4, 2
    batches = [np.asarray(optimizer.batch_indices(j, m)) for j in range(6)]
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    assert sorted(np.concatenate(batches[:3])) == list(range(m))
    assert sorted(np.concatenate(batches[3:])) == list(range(m))
    assert_array_equal(np.concatenate(batches[:3]), np.random.default_rng([7, 0]).permutation(m))
    fresh = ml.make_optimizer("sgd", batch_size=4, seed=7)
    assert_array_equal(fresh.batch_indices(4, m), batches[4])  # no hidden RNG state


def roundtrip(state: dict) -> dict:
    """What the service does with a checkpoint: serialise it and read it back."""
    buffer = io.BytesIO()
    pickle.dump(state, buffer)
    return pickle.loads(buffer.getvalue())


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "gd", "learning_rate": 0.3, "momentum": 0.9},
        {"kind": "sgd", "learning_rate": 0.3, "batch_size": 7, "seed": 2},
        {"kind": "sgd", "learning_rate": 0.3, "batch_size": 7, "seed": 2, "momentum": 0.5},
        {"kind": "newton"},
    ],
)
@pytest.mark.parametrize("stop_at", [0, 13, 29])
def test_resuming_from_state_dict_is_bit_identical(options, stop_at):
    data = ml.blobs(n_samples=30, n_classes=2, cluster_std=2.0, seed=8)
    kind = "logistic_regression" if options["kind"] == "newton" else "mlp"
    model = ml.make_model(kind, n_features=2, loss="log_loss", hidden_sizes=[6])

    def trainer(**kwargs) -> ml.Trainer:
        return ml.Trainer(
            model, ml.make_optimizer(**options), data.X, data.y, iterations=30, l2=0.01,
            params=model.init_params(seed=1, scale=0.5), **kwargs,
        )  # fmt: skip

    full = trainer().run()

    first = trainer()
    for record in first:
        if record.iteration == stop_at:
            state = first.state_dict()
            break
    assert state["iteration"] == stop_at
    assert set(state) == {"iteration", "params", "velocity"}
    assert bool(state["velocity"]) == bool(options.get("momentum"))
    for name, value in state["params"].items():
        assert_array_equal(value, first.params[name])
        assert value is not first.params[name]

    resumed = trainer(state=roundtrip(state)).run()
    assert resumed == full[stop_at:]  # NamedTuples of floats: bit-identical


def test_what_the_caller_sees_while_the_loop_is_suspended():
    data = ml.line(n_samples=20, seed=2)
    model = ml.make_model("linear_regression", n_features=1)
    optimizer = ml.make_optimizer("sgd", batch_size=8, learning_rate=0.1)
    trainer = ml.Trainer(model, optimizer, data.X, data.y, iterations=5)
    initial = trainer.state_dict()
    assert initial["iteration"] == 0 and initial["velocity"] == {}

    for record in trainer:
        assert trainer.iteration == record.iteration
        Xb, yb = trainer.batch
        assert Xb.shape == (8 if record.iteration % 3 < 2 else 4, 1)
        # the record's loss is the minibatch loss at the parameters before this update
        assert model.loss(trainer.params, Xb, yb, 0.0) == record.loss
        assert trainer.state_dict()["iteration"] == record.iteration
    assert trainer.state_dict()["iteration"] == 5
    assert trainer.iteration == 5
    assert list(trainer) == []  # nothing left to run
    assert not np.array_equal(trainer.params["W"], initial["params"]["W"])


def test_grad_norm_and_accuracy_come_from_the_same_forward_pass(make_problem):
    model, params, X, y = make_problem("softmax_regression", m=40)
    record = next(
        iter(ml.Trainer(model, ml.make_optimizer("gd"), X, y, iterations=1, params=params))
    )
    _, grads = model.loss_and_grads(params, X, y, 0.0)
    assert record.grad_norm == pytest.approx(
        math.sqrt(sum(np.sum(g**2) for g in grads.values())), rel=1e-14
    )
    scores = X @ params["W"] + params["b"]
    assert record.accuracy == np.mean(scores.argmax(axis=1) == y)


def test_gd_without_momentum_is_exactly_w_minus_lr_times_g(make_problem):
    model, params, X, y = make_problem("mlp", "cross_entropy", m=20)
    _, grads = model.loss_and_grads(params, X, y, 0.1)
    expected = {name: w - 0.3 * grads[name] for name, w in params.items()}
    trainer = ml.Trainer(
        model, ml.make_optimizer("gd", learning_rate=0.3), X, y,
        iterations=1, l2=0.1, params=params,
    )  # fmt: skip
    trainer.run()
    for name in params:
        assert_array_equal(trainer.params[name], expected[name])


def test_divergence_names_the_iteration_and_the_last_finite_loss():
    data = ml.line(n_samples=50, seed=0)
    model = ml.make_model("linear_regression", n_features=1)
    trainer = ml.Trainer(
        model, ml.make_optimizer("gd", learning_rate=10.0), data.X, data.y, iterations=10_000
    )
    records = []
    with pytest.raises(ml.DivergedError) as caught:
        for record in trainer:
            records.append(record)
    error = caught.value
    assert error.iteration == len(records) > 1
    assert error.last_finite_loss == records[-1].loss
    assert math.isfinite(error.last_finite_loss)
    assert f"iteration {error.iteration}" in str(error)
    assert f"{error.last_finite_loss:.6g}" in str(error)
    assert "learning_rate" in str(error)
    assert trainer.state_dict()["iteration"] == error.iteration
    assert pickle.loads(pickle.dumps(error)).iteration == error.iteration


def test_the_loop_can_stop_early_and_be_resumed_by_iterating_again():
    data = ml.line(seed=3)
    model = ml.make_model("linear_regression", n_features=1)
    trainer = ml.Trainer(model, ml.make_optimizer("gd"), data.X, data.y, iterations=10)
    first = []
    for record in trainer:
        first.append(record)
        if record.iteration == 3:
            break
    rest = list(trainer)
    assert [r.iteration for r in rest] == list(range(3, 10))
    assert rest[0] == first[-1]  # update 3 had not been applied when we broke out


def test_models_and_optimizers_survive_pickling(spiral_data):
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[10])
    optimizer = ml.make_optimizer("sgd", batch_size=50, momentum=0.5)

    def run(model: ml.Model, optimizer: ml.Optimizer) -> list[ml.IterationRecord]:
        trainer = ml.Trainer(model, optimizer, spiral_data.X, spiral_data.y, iterations=12)
        return trainer.run()

    expected = run(model, optimizer)
    assert run(*pickle.loads(pickle.dumps((model, optimizer)))) == expected


def line_with_outliers() -> tuple[np.ndarray, np.ndarray]:
    """y = 2x + 1 with small noise, and a tenth of the points thrown far above the line."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-1.0, 1.0, size=100)
    y = 2.0 * x + 1.0 + 0.05 * rng.standard_normal(100)
    y[::10] += 8.0
    return x[:, None], y


def fitted_line(loss: str) -> tuple[float, float]:
    X, y = line_with_outliers()
    model = ml.make_model("linear_regression", n_features=1, loss=loss)
    trainer = ml.Trainer(model, ml.make_optimizer("gd", learning_rate=0.5), X, y, iterations=3000)
    trainer.run()
    return float(trainer.params["W"][0, 0]), float(trainer.params["b"][0])


def test_huber_fits_a_line_with_outliers_better_than_mse():
    slope_mse, intercept_mse = fitted_line("mse")
    slope_huber, intercept_huber = fitted_line("huber")
    # The outliers drag the mean-squared fit up by about their share of the offset (0.8).
    # Huber's linear tails cap each outlier's pull at delta/m, which the 90 inliers balance
    # by leaning only 10·delta/90 ≈ 0.11 the other way.
    assert intercept_mse - 1.0 > 0.6
    assert abs(intercept_huber - 1.0) < 0.15
    assert abs(slope_huber - 2.0) < abs(slope_mse - 2.0) + 0.05
    assert abs(intercept_huber - 1.0) < abs(intercept_mse - 1.0) / 5


def test_huber_is_half_mse_inside_delta_and_linear_beyond():
    yhat = np.array([0.1, -0.4, 3.0, -5.0])
    y = np.zeros(4)
    small = ml.make_model("linear_regression", n_features=1, loss="huber")
    inside, _ = small._data_loss(yhat[:2], y[:2])
    half, _ = ml.make_model("linear_regression", n_features=1, loss="half_mse")._data_loss(
        yhat[:2], y[:2]
    )
    assert inside == pytest.approx(half, rel=1e-15)
    outside, d = small._data_loss(yhat[2:], y[2:])
    assert outside == pytest.approx(((3.0 - 0.5) + (5.0 - 0.5)) / 2, rel=1e-15)
    assert_allclose(d, [0.5, -0.5])  # the pull of each outlier is delta/m, whatever its size
    wide = ml.make_model(
        "linear_regression", n_features=1, loss="huber", loss_options={"delta": 10.0}
    )
    assert wide._data_loss(yhat, y)[0] == pytest.approx(0.5 * np.mean(yhat**2), rel=1e-15)


def test_huber_options_are_checked():
    with pytest.raises(ml.SpecError, match="huber has no option 'width'"):
        ml.make_model("linear_regression", n_features=1, loss="huber", loss_options={"width": 1})
    with pytest.raises(ml.SpecError, match="delta"):
        ml.make_model("linear_regression", n_features=1, loss="huber", loss_options={"delta": 0})
