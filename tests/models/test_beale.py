"""The Beale toy problem (tinybnn.models.beale): the function and its gradient, the model, and the
experiment runner."""

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import surge
from tinybnn.errors import ConfigError
from tinybnn.gradcheck import gradcheck, numerical_gradient
from tinybnn.models import beale as B


def test_beale_value_and_minimum():
    assert B.beale(tb.tensor(np.array([3.0, 0.5]))).item() == 0.0
    # f(0, 0) = 1.5² + 2.25² + 2.625²
    assert B.beale(tb.tensor(np.array([0.0, 0.0]))).item() == pytest.approx(
        1.5**2 + 2.25**2 + 2.625**2)
    # f(1, 1) = 1.5² + 2.25² + 2.625² as well (every term has −x + xy^i = 0)
    assert B.beale(tb.tensor(np.array([1.0, 1.0]))).item() == pytest.approx(14.203125)
    pts = np.random.default_rng(0).uniform(-4.5, 4.5, size=(50, 2))
    values = B.beale(tb.tensor(pts), reduction="none").data
    assert np.allclose(values, B.beale_numpy(pts[:, 0], pts[:, 1]))
    assert np.all(values >= 0)
    assert B.beale(tb.tensor(pts)).item() == pytest.approx(values.mean())
    assert B.beale(tb.tensor(pts), reduction="sum").item() == pytest.approx(values.sum())
    # the minimum of a fine grid is at (3, 0.5)
    xs, ys = np.meshgrid(np.linspace(-4.5, 4.5, 361), np.linspace(-4.5, 4.5, 361))
    i = np.argmin(B.beale_numpy(xs, ys))
    assert (xs.flat[i], ys.flat[i]) == pytest.approx((3.0, 0.5))
    assert B.distance_to_minimum(np.array([[3.0, 0.5], [0.0, 0.5]])) == pytest.approx([0, 3])


def test_beale_gradient_against_finite_differences():
    rng = np.random.default_rng(1)
    gradcheck(lambda p: B.beale(p, reduction="none"), rng.uniform(-2, 2, size=(6, 2)))
    gradcheck(B.beale, rng.uniform(-2, 2, size=2))
    # and at the minimum the gradient is zero
    p = tb.tensor(np.array([3.0, 0.5]), requires_grad=True)
    B.beale(p).backward()
    assert np.allclose(p.grad, 0.0)


def test_beale_gradient_closed_form():
    x, y = 1.3, -0.7
    p = tb.tensor(np.array([x, y]), requires_grad=True)
    B.beale(p).backward()
    t = [1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3]
    dx = sum(2 * t[i] * (y ** (i + 1) - 1) for i in range(3))
    dy = sum(2 * t[i] * (i + 1) * x * y**i for i in range(3))
    assert p.grad == pytest.approx([dx, dy])


def test_beale_bad_shape():
    with pytest.raises(ConfigError):
        B.beale(tb.tensor(np.zeros((2, 3))))


def test_models_share_the_initialisation():
    state = B.initial_state(3, d_in=8, hidden=16)
    models = {m: B.build_model(m, state) for m in B.DEFAULT_METHODS}
    for m, model in models.items():
        fc1 = B._binary(model.fc1)
        assert np.array_equal(fc1.weight.data, state["w1"])
        assert np.array_equal(B._binary(model.fc2).weight.data, state["w2"])
        assert fc1.weight.data is not state["w1"]
    assert isinstance(models["ste+surge"].fc2, surge.SurgeLayer)
    assert models["ste+noise"].fc2.compensation == "noise"
    assert models["bireal"].fc2.input_quantizer.quantizer.registry_name == "approx_sign"
    # SURGE does not change the output; the FP net differs
    with tb.no_grad():
        outs = {m: model().data for m, model in models.items()}
    for m in ("ste+surge", "ste+noise", "bireal", "bireal+surge"):
        assert np.array_equal(outs[m], outs["ste"])
    assert not np.array_equal(outs["fp"], outs["ste"])
    # binary output = α_w2·α_a·(integer vector)
    fc2 = models["ste"].fc2
    scale = fc2.weight_quantizer.alpha.item() * fc2.input_quantizer.alpha.item()
    s = outs["ste"] / scale
    assert np.allclose(s, np.round(s), atol=1e-4)


def test_parse_method():
    assert B.parse_method("fp") == (None, None)
    assert B.parse_method("ste+surge") == ("ste_sign", "surge")
    assert B.parse_method("bireal") == ("approx_sign", None)
    assert B.parse_method("swish_sign+noise") == ("swish_sign", "noise")
    for bad in ("fp+surge", "ste+magic", "nosuch"):
        with pytest.raises(ConfigError):
            B.parse_method(bad)


def test_alpha_per_channel():
    model = B.build_model("ste", B.initial_state(0), alpha="channel")
    assert model.fc2.weight_quantizer.alpha.shape == (2, 1)
    with pytest.raises(ConfigError):
        B.build_model("ste", B.initial_state(0), alpha="pixel")


def test_runner_records_everything_and_is_deterministic():
    kwargs = dict(methods=("fp", "ste", "ste+surge", "ste+noise"), seeds=[0, 1], steps=12)
    a = B.run_beale(**kwargs)
    b = B.run_beale(**kwargs)
    for m in kwargs["methods"]:
        for ra, rb in zip(a[m], b[m]):
            assert np.array_equal(ra.trajectory, rb.trajectory)
            assert np.array_equal(ra.loss, rb.loss)
            for layer in ra.lam:
                assert np.array_equal(ra.lam[layer], rb.lam[layer])
    run = a.run("ste+surge", 1)
    T = 12
    assert run.trajectory.shape == (T + 1, 2) and run.loss.shape == (T + 1,)
    assert np.allclose(run.distance, B.distance_to_minimum(run.trajectory))
    assert np.allclose(run.loss, B.beale_numpy(run.trajectory[:, 0], run.trajectory[:, 1]),
                       rtol=1e-4, atol=1e-6)
    assert set(run.lam) == {"fc1", "fc2"}
    # λ starts at 1/√|W_a| and the first layer's (its input needs no gradient) never changes
    assert run.lam["fc2"][0] == pytest.approx(1 / np.sqrt(2 * 16))
    assert np.all(run.lam["fc1"] == pytest.approx(1 / np.sqrt(16 * 8)))
    assert run.lam["fc2"][1] != run.lam["fc2"][0]
    assert run.norm_main.shape == (T + 1,) and np.all(np.isfinite(run.norm_aux))
    assert run.alpha_w["fc2"].shape == (T + 1,) and run.alpha_a.shape == (T + 1,)
    assert run.grads["hidden"].shape == (T, 1, 16)
    assert run.grads["hidden_main"].shape == (T, 1, 16)
    assert run.grads["fc1.weight"].shape == (T, 16, 8)
    assert np.array_equal(run.grad("fc2.weight", 3), run.grads["fc2.weight"][3])
    with pytest.raises(KeyError):
        run.grad("nothing", 0)
    fp = a.run("fp", 0)
    assert fp.lam == {} and np.all(np.isnan(fp.norm_aux)) and np.all(np.isnan(fp.alpha_a))
    # the same seed, the same start for every method
    starts = {m: a.run(m, 0).trajectory[0] for m in ("ste", "ste+surge", "ste+noise")}
    assert np.array_equal(starts["ste"], starts["ste+surge"])
    assert np.array_equal(starts["ste"], starts["ste+noise"])
    # summaries
    summary = a.summary()
    assert set(summary) == set(kwargs["methods"]) and summary["fp"]["seeds"] == 2
    assert summary["ste"]["q25"] <= summary["ste"]["median"] <= summary["ste"]["q75"]
    assert "| ste+surge |" in a.table() and "| ste |" in a.table("tail")
    assert a.wins("ste+surge", "ste")[1] == 2
    assert a.stack("ste+surge", "lam", "fc2").shape == (2, T)


def test_trainer_steps_by_hand():
    trainer = B.BealeTrainer("ste+surge", seed=0)
    losses = [trainer.step() for _ in range(5)]
    assert trainer.t == 5 and all(np.isfinite(losses))
    p = trainer.model().data
    assert p.shape == (1, 2)


def test_figures():
    from matplotlib.figure import Figure

    results = B.run_beale(methods=("fp", "ste", "ste+surge"), seeds=[0, 1], steps=5)
    for fig in (B.figure_convergence(results), B.figure_parameters(results),
                B.plot_trajectories(results, seed=1), B.plot_landscape()):
        assert isinstance(fig, Figure)
        fig.canvas.draw()
