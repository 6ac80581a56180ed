"""Module bookkeeping: registration, traversal, modes, state dicts, hooks, repr."""

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import nn
from tinybnn.gradcheck import gradcheck


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(np.ones(2, dtype=np.float32))
        self.register_buffer("count", np.zeros(1, dtype=np.int64))

    def forward(self, x):
        return self.fc(x) * self.scale


def test_parameters_children_and_names():
    m = Tiny()
    assert [n for n, _ in m.named_parameters()] == ["scale", "fc.weight", "fc.bias"]  # own first, as PyTorch
    assert list(m.children()) == [m.fc]
    assert [n for n, _ in m.named_modules()] == ["", "fc"]
    assert m.num_parameters() == 3 * 2 + 2 + 2


def test_train_eval_propagates():
    m = nn.Sequential(Tiny(), nn.Dropout(0.5))
    m.eval()
    assert all(not sub.training for sub in m.modules())
    m.train()
    assert all(sub.training for sub in m.modules())


def test_zero_grad_clears_every_parameter():
    m = Tiny()
    m(tb.tensor(np.ones((4, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_state_dict_round_trip_includes_buffers():
    a, b = Tiny(), Tiny()
    a.set_buffer("count", np.array([7]))
    b.load_state_dict(a.state_dict())
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
    assert b.count.tolist() == [7]
    state = a.state_dict()
    state["fc.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(a.fc.weight.data != 0)


def test_load_state_dict_errors_name_the_entry():
    m = Tiny()
    state = m.state_dict()
    state["fc.weight"] = np.zeros((5, 5), np.float32)
    with pytest.raises(tb.CheckpointError, match="shape mismatch for fc.weight"):
        m.load_state_dict(state)
    with pytest.raises(tb.CheckpointError, match="missing.*scale"):
        m.load_state_dict({k: v for k, v in m.state_dict().items() if k != "scale"})


def test_forward_hook_sees_output():
    m = Tiny()
    seen = []
    remove = m.fc.register_forward_hook(lambda mod, inputs, out: seen.append(out.shape))
    m(tb.tensor(np.ones((4, 3), np.float32)))
    remove()
    m(tb.tensor(np.ones((4, 3), np.float32)))
    assert seen == [(4, 2)]


def test_repr_is_readable():
    text = repr(nn.Sequential(nn.Linear(3, 2), nn.ReLU()))
    assert "(0): Linear(3, 2, bias=True)" in text and "(1): ReLU()" in text


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Broken()


def test_linear_default_init_bounds():
    layer = nn.Linear(100, 50, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(100)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_binary_linear_forward_and_surrogate_gradients():
    rng = np.random.default_rng(0)
    layer = nn.BinaryLinear(5, 3, scale="mean_abs", rng=rng)
    x = rng.standard_normal((4, 5)).astype(np.float32) * 1.5
    x[0, 0] = 0.0  # sign(0) = +1
    xt = tb.tensor(x, requires_grad=True)
    y = layer(xt)
    w = layer.weight.data
    sx, sw = np.where(x >= 0, 1, -1), np.where(w >= 0, 1, -1)
    alpha = np.abs(w).mean(axis=1)
    np.testing.assert_allclose(y.data, (sx @ sw.T) * alpha, rtol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    np.testing.assert_allclose(xt.grad, ((g * alpha) @ sw) * (np.abs(x) <= 1), rtol=1e-5)
    np.testing.assert_allclose(layer.weight.grad, ((g * alpha).T @ sx) * (np.abs(w) <= 1), rtol=1e-5)
    assert layer.weight.binary and [p.binary for p in layer.parameters()] == [True]


def test_binary_linear_learnable_scale_gradient():
    rng = np.random.default_rng(1)
    layer = nn.BinaryLinear(4, 3, scale="learnable", bias=True, rng=rng)
    layer.alpha.data = layer.alpha.data.astype(np.float64)
    layer.bias.data = layer.bias.data.astype(np.float64)
    x = tb.tensor(rng.standard_normal((2, 4)))

    def f(alpha, bias):
        layer.alpha, layer.bias = alpha, bias
        return layer(x)

    gradcheck(f, layer.alpha.data.copy(), layer.bias.data.copy())


def test_binary_linear_rejects_unknown_scale_and_quantizer():
    with pytest.raises(tb.ConfigError, match="unknown scale 'max'"):
        nn.BinaryLinear(2, 2, scale="max")
    with pytest.raises(tb.ConfigError, match="unknown quantizer 'nope'"):
        nn.BinaryLinear(2, 2, input_quantizer="nope")


def test_binary_linear_w1a32_keeps_real_inputs():
    layer = nn.BinaryLinear(3, 2, input_quantizer=None)
    x = np.array([[0.5, -0.25, 2.0]], np.float32)
    sw = np.where(layer.weight.data >= 0, 1, -1)
    np.testing.assert_allclose(layer(tb.tensor(x)).data, x @ sw.T, rtol=1e-6)
