"""SURGE (tinybnn.surge): the forward is the binary layer's, bit for bit; the backward is the
hand-written formula of the digest's NumPy reference (g_b + λ·g_a, Algorithm A's weight
gradients); λ follows Eq. 7 one step late, starting at 1/√|W_a|."""

import math

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import nn, surge
from tinybnn.errors import ConfigError

ETA = 0.01


def sgn(a):
    return np.where(a >= 0, 1.0, -1.0)


def norm(a):
    return float(np.sqrt((np.asarray(a, dtype=np.float64) ** 2).sum()))


def to64(module):
    """Turn every parameter of a module into float64 (exact reference comparisons)."""
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def linear_case(seed=0, n=6, d_in=7, d_out=5, input_quantizer="ste_sign", init="independent",
                **options):
    rng = np.random.default_rng(seed)
    layer = to64(nn.BinaryLinear(d_in, d_out, input_quantizer=input_quantizer, rng=rng))
    wrapped = surge.SurgeLayer(layer, init=init, rng=rng, **options)
    to64(wrapped)
    x = rng.standard_normal((n, d_in)) * 1.5          # about a half of the entries have |x| > 1
    dout = rng.standard_normal((n, d_out))
    return layer, wrapped, x, dout


def run(module, x, dout):
    xt = tb.tensor(x, requires_grad=True)
    out = module(xt)
    out.backward(dout)
    return out, xt


# --- the NumPy reference of the digest (surge.md, "Reference (linear layer, NumPy)") ----------

def reference_linear(x, wb, wa, dout, lam, window=lambda x: (np.abs(x) <= 1) * 1.0):
    g_b = (dout @ sgn(wb)) * window(x)
    d_wb = (dout.T @ sgn(x)) * (np.abs(wb) <= 1)      # the weight STE clips |W| > 1 too
    g_a = dout @ wa
    d_wa = lam * (dout.T @ x)
    dx = g_b + lam * g_a
    lam_next = ETA * norm(g_b) / (norm(g_a) + 1e-8)
    return dict(g_b=g_b, g_a=g_a, dx=dx, d_wb=d_wb, d_wa=d_wa, lam_next=lam_next)


# --- a naive (loop) convolution for the BinaryConv2d reference --------------------------------

def conv_ref(x, w, stride, pad, pad_value=0.0):
    """Cross-correlation by loops on the padded input; returns y and the padded input."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.full((n, c, h + 2 * pad, wd + 2 * pad), pad_value, dtype=np.float64)
    xp[:, :, pad:pad + h, pad:pad + wd] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return y, xp


def conv_grads_ref(xp_shape, w, dout, stride, pad, xp):
    """dL/dx (border dropped) and dL/dW of the loop convolution."""
    n, c, hp, wp = xp_shape
    o, _, kh, kw = w.shape
    dxp = np.zeros(xp_shape)
    dw = np.zeros(w.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            g = dout[:, :, i, j]                                    # (n, o)
            dxp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += \
                np.einsum("no,ockl->nckl", g, w)
            dw += np.einsum("no,nckl->ockl", g, xp[:, :, i * stride:i * stride + kh,
                                                    j * stride:j * stride + kw])
    return dxp[:, :, pad:hp - pad, pad:wp - pad], dw


# ---------------------------------------------------------------------------------------------
# Forward: exactly the binary layer
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("quantizer", ["ste_sign", "approx_sign", None])
def test_forward_is_bit_identical_linear(quantizer):
    rng = np.random.default_rng(1)
    layer = nn.BinaryLinear(9, 4, input_quantizer=quantizer, scale="learnable", bias=True,
                            rng=rng)
    x = tb.tensor(rng.standard_normal((5, 9)).astype(np.float32) * 3, requires_grad=True)
    plain = layer(x).data.copy()
    wrapped = surge.SurgeLayer(layer, init="independent", rng=rng)
    for _ in range(3):  # also after λ has changed
        out = wrapped(x)
        assert out.data.dtype == plain.dtype
        assert out.data.tobytes() == plain.tobytes()
        out.backward(np.ones_like(out.data))


@pytest.mark.parametrize("k,stride,pad,pad_value,aux_kernel",
                         [(3, 1, 1, 0.0, None), (3, 2, 1, 1.0, None), (3, 1, 1, -1.0, 1),
                          (3, 2, 0, 1.0, 1), (1, 1, 0, 0.0, None)])
def test_forward_is_bit_identical_conv(k, stride, pad, pad_value, aux_kernel):
    rng = np.random.default_rng(2)
    layer = nn.BinaryConv2d(3, 5, k, stride=stride, padding=pad, pad_value=pad_value,
                            scale="mean_abs", rng=rng)
    x = tb.tensor(rng.standard_normal((2, 3, 7, 6)).astype(np.float32) * 2, requires_grad=True)
    plain = layer(x).data.copy()
    out = surge.SurgeLayer(layer, aux_kernel=aux_kernel)(x)
    assert out.data.tobytes() == plain.tobytes()


def test_exact_merge_versus_the_literal_formula():
    """Eq. 5 taken literally rounds; the merge Function returns f_b bit for bit."""
    f_b = tb.tensor(np.array([1e-8, 3.0, -0.0], dtype=np.float32), requires_grad=True)
    f_ao = tb.tensor(np.array([1.0, 1e-3, 0.5], dtype=np.float32), requires_grad=True)
    literal = surge.compensate(f_b, f_ao, exact=False)
    exact = surge.compensate(f_b, f_ao, exact=True)
    assert exact.data.tobytes() == f_b.data.tobytes()
    assert literal.data[0] == 0.0                       # (1e-8 − 1) + 1 = 0 in float32
    assert np.allclose(literal.data, f_b.data, atol=1e-6)
    # the gradients of the two forms are the same: 1 for both paths
    for form in (literal, exact):
        f_b.grad = f_ao.grad = None
        form.backward(np.array([1.0, 2.0, 3.0], dtype=np.float32))
        assert np.array_equal(f_b.grad, [1, 2, 3]) and np.array_equal(f_ao.grad, [1, 2, 3])


def test_literal_form_gives_the_same_gradients():
    layer, wrapped, x, dout = linear_case()
    wrapped.exact = False
    out_lit, x_lit = run(wrapped, x, dout)
    grads_lit = (x_lit.grad.copy(), layer.weight.grad.copy(), wrapped.aux_weight.grad.copy())
    layer2, wrapped2, _, _ = linear_case()
    out_ex, x_ex = run(wrapped2, x, dout)
    assert np.allclose(out_lit.data, out_ex.data, atol=1e-12)
    for a, b in zip(grads_lit, (x_ex.grad, layer2.weight.grad, wrapped2.aux_weight.grad)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_no_grad_runs_only_the_binary_layer():
    layer, wrapped, x, _ = linear_case()
    with tb.no_grad():
        out = wrapped(tb.tensor(x))
    assert out.grad_fn is None
    assert np.array_equal(out.data, layer(tb.tensor(x)).data)
    assert wrapped.stats["steps"] == 0


# ---------------------------------------------------------------------------------------------
# Backward: the reference formulas
# ---------------------------------------------------------------------------------------------

def test_backward_matches_reference_linear():
    layer, wrapped, x, dout = linear_case()
    lam0 = wrapped.lam
    ref = reference_linear(x, layer.weight.data, wrapped.aux_weight.data, dout, lam0)
    _, xt = run(wrapped, x, dout)
    assert np.allclose(xt.grad, ref["dx"], rtol=1e-10, atol=1e-12)
    assert np.allclose(layer.weight.grad, ref["d_wb"], rtol=1e-10, atol=1e-12)
    assert np.allclose(wrapped.aux_weight.grad, ref["d_wa"], rtol=1e-10, atol=1e-12)
    assert wrapped.stats["g_b_norm"] == pytest.approx(norm(ref["g_b"]), rel=1e-10)
    assert wrapped.stats["g_a_norm"] == pytest.approx(norm(ref["g_a"]), rel=1e-10)
    assert wrapped.lam == pytest.approx(ref["lam_next"], rel=1e-10)
    # the compensation really fills the clipped positions
    clipped = np.abs(x) > 1
    assert clipped.any() and np.all(ref["g_b"][clipped] == 0)
    assert np.all(xt.grad[clipped] != 0)


def test_backward_with_approx_sign():
    """g_b comes from whatever the input quantizer's backward is: here Bi-Real's ApproxSign."""
    layer, wrapped, x, dout = linear_case(input_quantizer="approx_sign")
    lam0 = wrapped.lam
    ref = reference_linear(x, layer.weight.data, wrapped.aux_weight.data, dout, lam0,
                           window=lambda x: np.maximum(0, 2 - 2 * np.abs(x)))
    _, xt = run(wrapped, x, dout)
    assert np.allclose(xt.grad, ref["dx"], rtol=1e-10, atol=1e-12)
    assert wrapped.lam == pytest.approx(ref["lam_next"], rel=1e-10)


@pytest.mark.parametrize("stride,pad,pad_value,aux_kernel",
                         [(1, 1, 0.0, None), (2, 1, 1.0, None), (1, 1, -1.0, 1), (2, 1, 0.0, 1)])
def test_backward_matches_reference_conv(stride, pad, pad_value, aux_kernel):
    rng = np.random.default_rng(3)
    layer = to64(nn.BinaryConv2d(2, 3, 3, stride=stride, padding=pad, pad_value=pad_value,
                                 rng=rng))
    wrapped = to64(surge.SurgeLayer(layer, aux_kernel=aux_kernel, init="independent", rng=rng))
    x = rng.standard_normal((2, 2, 6, 5)) * 1.5
    wb, wa, lam = layer.weight.data, wrapped.aux_weight.data, wrapped.lam
    # reference: the binary branch on the ±1-padded sign(x), the auxiliary one on zero-padded x
    y_b, xp_b = conv_ref(sgn(x), sgn(wb), stride, pad, pad_value)
    pad_a = wrapped.aux_padding[0]
    y_a, xp_a = conv_ref(x, wa, stride, pad_a)
    dout = rng.standard_normal(y_b.shape)
    dsx, dwb = conv_grads_ref(xp_b.shape, sgn(wb), dout, stride, pad, xp_b)
    g_b = dsx * (np.abs(x) <= 1)
    g_a, dwa = conv_grads_ref(xp_a.shape, wa, dout, stride, pad_a, xp_a)
    out, xt = run(wrapped, x, dout)
    assert np.allclose(out.data, y_b, atol=1e-12)
    assert y_a.shape == y_b.shape
    assert np.allclose(xt.grad, g_b + lam * g_a, rtol=1e-10, atol=1e-12)
    assert np.allclose(layer.weight.grad, dwb * (np.abs(wb) <= 1), rtol=1e-10, atol=1e-12)
    assert np.allclose(wrapped.aux_weight.grad, lam * dwa, rtol=1e-10, atol=1e-12)
    assert wrapped.lam == pytest.approx(ETA * norm(g_b) / (norm(g_a) + 1e-8), rel=1e-10)


def test_one_by_one_auxiliary_variant():
    """SURGE*: a 1×1 auxiliary convolution next to a 3×3 binary one (Table A)."""
    rng = np.random.default_rng(4)
    layer = to64(nn.BinaryConv2d(3, 4, 3, stride=2, padding=1, rng=rng))
    wrapped = to64(surge.SurgeLayer(layer, aux_kernel=1))
    assert wrapped.aux_weight.shape == (4, 3, 1, 1)
    assert wrapped.aux_padding == (0, 0)
    # "copy" init of a 1×1 kernel: the sum of the 3×3 window
    assert np.allclose(wrapped.aux_weight.data[:, :, 0, 0], layer.weight.data.sum(axis=(2, 3)))
    assert wrapped.lam == pytest.approx(1 / math.sqrt(12))
    x = rng.standard_normal((2, 3, 6, 6)) * 1.5
    y_a, xp_a = conv_ref(x, wrapped.aux_weight.data, 2, 0)
    dout = rng.standard_normal(y_a.shape)
    g_a, _ = conv_grads_ref(xp_a.shape, wrapped.aux_weight.data, dout, 2, 0, xp_a)
    y_b, xp_b = conv_ref(sgn(x), sgn(layer.weight.data), 2, 1)
    dsx, _ = conv_grads_ref(xp_b.shape, sgn(layer.weight.data), dout, 2, 1, xp_b)
    lam = wrapped.lam
    _, xt = run(wrapped, x, dout)
    assert np.allclose(xt.grad, dsx * (np.abs(x) <= 1) + lam * g_a, rtol=1e-10, atol=1e-12)
    assert np.isfinite(wrapped.weight_grad_cosine())


def test_bad_auxiliary_kernel():
    layer = nn.BinaryConv2d(3, 4, 3, padding=1)
    with pytest.raises(ConfigError, match="even number"):
        surge.SurgeLayer(layer, aux_kernel=2)


# ---------------------------------------------------------------------------------------------
# The Adaptive Gradient Scaler
# ---------------------------------------------------------------------------------------------

def test_initial_lambda_is_one_over_sqrt_of_aux_size():
    layer, wrapped, _, _ = linear_case(d_in=7, d_out=5)
    assert wrapped.lam == pytest.approx(1 / math.sqrt(35))
    conv = surge.SurgeLayer(nn.BinaryConv2d(4, 8, 3, padding=1))
    assert conv.lam == pytest.approx(1 / math.sqrt(8 * 4 * 9))


def test_lambda_is_lagged_one_step():
    """Step t uses the ratio measured at step t−1 (Algorithm A, lines 7 and 19)."""
    layer, wrapped, x1, dout1 = linear_case()
    rng = np.random.default_rng(9)
    x2, dout2 = rng.standard_normal(x1.shape) * 1.5, rng.standard_normal(dout1.shape)
    lam0 = wrapped.lam
    ref1 = reference_linear(x1, layer.weight.data, wrapped.aux_weight.data, dout1, lam0)
    run(wrapped, x1, dout1)
    lam1 = wrapped.lam
    assert lam1 == pytest.approx(ref1["lam_next"], rel=1e-10) and lam1 != pytest.approx(lam0)
    assert wrapped.stats["lam_used"] == lam0
    # the second step uses lam1 (not a ratio of its own gradients)
    ref2 = reference_linear(x2, layer.weight.data, wrapped.aux_weight.data, dout2, lam1)
    _, xt = run(wrapped, x2, dout2)
    assert np.allclose(xt.grad, ref2["dx"], rtol=1e-10, atol=1e-12)
    assert wrapped.stats["lam_used"] == lam1
    assert wrapped.lam == pytest.approx(ref2["lam_next"], rel=1e-10)
    assert wrapped.stats["steps"] == 2


def test_compensation_norm_is_eta_times_main_norm_after_one_step():
    """Repeating the same step: λ·‖g_a‖ = η·‖g_b‖ (what AGS aims at)."""
    layer, wrapped, x, dout = linear_case()
    run(wrapped, x, dout)
    run(wrapped, x, dout)
    s = wrapped.stats
    assert s["lam_used"] * s["g_a_norm"] == pytest.approx(ETA * s["g_b_norm"], rel=1e-6)


def test_fixed_lambda():
    layer, wrapped, x, dout = linear_case(fixed_lambda=0.05)
    assert wrapped.lam == 0.05
    ref = reference_linear(x, layer.weight.data, wrapped.aux_weight.data, dout, 0.05)
    for _ in range(2):
        layer.weight.grad = None
        _, xt = run(wrapped, x, dout)
        assert np.allclose(xt.grad, ref["dx"], rtol=1e-10, atol=1e-12)
        assert wrapped.lam == 0.05
    assert wrapped.stats["g_a_norm"] == pytest.approx(norm(ref["g_a"]), rel=1e-10)


def test_lambda_zero_still_measures_g_a():
    """With λ = 0 nothing is compensated, but ‖g_a‖ is still measured (it is taken before the
    λ scaling)."""
    layer, wrapped, x, dout = linear_case(fixed_lambda=0.0)
    ref = reference_linear(x, layer.weight.data, wrapped.aux_weight.data, dout, 0.0)
    _, xt = run(wrapped, x, dout)
    assert np.allclose(xt.grad, ref["g_b"], rtol=1e-10, atol=1e-12)
    assert wrapped.stats["g_a_norm"] == pytest.approx(norm(ref["g_a"]), rel=1e-10)


def test_all_clipped_gives_lambda_zero():
    """Eq. 7 with g_b = 0 (every input clipped): λ becomes 0, as Algorithm A says."""
    layer, wrapped, x, dout = linear_case()
    x = np.where(x >= 0, 2.0, -2.0)
    _, xt = run(wrapped, x, dout)
    assert wrapped.stats["g_b_norm"] == 0 and wrapped.lam == 0.0


@pytest.mark.parametrize("scope", ["clipped", "unclipped", "all"])
def test_scopes(scope):
    layer, wrapped, x, dout = linear_case(scope=scope)
    lam0 = wrapped.lam
    ref = reference_linear(x, layer.weight.data, wrapped.aux_weight.data, dout, lam0)
    clipped = np.abs(x) > 1
    mask = {"clipped": clipped, "unclipped": ~clipped, "all": np.ones_like(clipped)}[scope]
    _, xt = run(wrapped, x, dout)
    g_a = ref["g_a"] * mask
    assert np.allclose(xt.grad, ref["g_b"] + lam0 * g_a, rtol=1e-10, atol=1e-12)
    assert wrapped.stats["g_a_norm"] == pytest.approx(norm(g_a), rel=1e-10)
    assert wrapped.lam == pytest.approx(ETA * norm(ref["g_b"]) / (norm(g_a) + 1e-8), rel=1e-10)
    # the weight gradient of W_a is not masked (the scope concerns ∂L/∂x)
    assert np.allclose(wrapped.aux_weight.grad, ref["d_wa"], rtol=1e-10, atol=1e-12)


def test_noise_control_has_the_norm_of_the_compensation():
    layer, wrapped, x, dout = linear_case(compensation="noise")
    lam0 = wrapped.lam
    ref = reference_linear(x, layer.weight.data, wrapped.aux_weight.data, dout, lam0)
    _, xt = run(wrapped, x, dout)
    added = xt.grad - ref["g_b"]
    assert norm(added) == pytest.approx(lam0 * norm(ref["g_a"]), rel=1e-9)
    assert abs(surge.cosine(added, ref["g_a"])) < 0.9           # a different direction
    assert wrapped.lam == pytest.approx(ref["lam_next"], rel=1e-10)


def test_weight_gradient_cosine():
    layer, wrapped, x, dout = linear_case()
    assert math.isnan(wrapped.weight_grad_cosine())
    ref = reference_linear(x, layer.weight.data, wrapped.aux_weight.data, dout, wrapped.lam)
    run(wrapped, x, dout)
    expected = surge.cosine(ref["d_wb"], dout.T @ x)
    assert wrapped.statistics()["cos_w"] == pytest.approx(expected, rel=1e-10)


def test_input_without_gradient_keeps_lambda():
    layer, wrapped, x, dout = linear_case()
    lam0 = wrapped.lam
    out = wrapped(tb.tensor(x))                 # x does not require grad: the first layer
    out.backward(dout)
    assert wrapped.lam == lam0 and wrapped.stats["steps"] == 0
    assert wrapped.aux_weight.grad is not None  # W_a still gets its gradient


# ---------------------------------------------------------------------------------------------
# Initialisation, wrap and unwrap
# ---------------------------------------------------------------------------------------------

def test_copy_and_independent_init():
    rng = np.random.default_rng(5)
    layer = nn.BinaryLinear(6, 3, rng=rng)
    copied = surge.SurgeLayer(layer, init="copy")
    assert np.array_equal(copied.aux_weight.data, layer.weight.data)
    assert copied.aux_weight.data is not layer.weight.data
    assert not copied.aux_weight.binary
    fresh = surge.SurgeLayer(nn.BinaryLinear(6, 3, rng=rng), init="independent", rng=1)
    assert not np.array_equal(fresh.aux_weight.data, fresh.layer.weight.data)
    with pytest.raises(ConfigError):
        surge.SurgeLayer(layer, init="zeros")
    with pytest.raises(ConfigError):
        surge.SurgeLayer(layer, scope="some")
    with pytest.raises(ConfigError):
        surge.SurgeLayer(nn.Linear(3, 3))


def make_model(rng):
    return nn.Sequential(nn.Linear(5, 8, rng=rng), nn.BinaryLinear(8, 8, rng=rng), nn.Tanh(),
                         nn.Sequential(nn.BinaryLinear(8, 6, input_quantizer="approx_sign",
                                                       rng=rng)),
                         nn.Linear(6, 2, rng=rng))


def test_wrap_every_binary_layer_in_place_and_unwrap():
    rng = np.random.default_rng(6)
    model = make_model(rng)
    x = tb.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    before = model(x).data.copy()
    names_before = [n for n, _ in model.named_parameters()]
    returned = surge.wrap(model, eta=0.001)
    assert returned is model
    layers = surge.surge_layers(model)
    assert [n for n, _ in layers] == ["1", "3.0"]
    assert all(m.eta == 0.001 for _, m in layers)
    assert [type(m).__name__ for m in model] == ["Linear", "SurgeLayer", "Tanh", "Sequential",
                                                  "Linear"]                    # order kept
    surge.wrap(model)                                                          # no double wrap
    assert len(surge.surge_layers(model)) == 2
    out = model(x)
    assert out.data.tobytes() == before.tobytes()
    out.sum().backward()
    assert set(surge.lambdas(model)) == {"1", "3.0"}
    stats = surge.layer_stats(model)
    assert set(stats["1"]) >= {"lam", "lam_used", "g_b_norm", "g_a_norm", "cos_w", "norm_main",
                               "norm_aux"}
    plain = surge.unwrap(model)
    assert plain is model
    assert [n for n, _ in model.named_parameters()] == names_before
    assert not any("aux" in n for n, _ in model.named_parameters())
    assert model[1].weight._hooks == []                                       # hooks removed
    assert model(x).data.tobytes() == before.tobytes()


def test_wrap_with_include_and_a_single_layer():
    rng = np.random.default_rng(7)
    model = make_model(rng)
    surge.wrap(model, include=lambda name, m: name != "1")
    assert [n for n, _ in surge.surge_layers(model)] == ["3.0"]
    layer = nn.BinaryLinear(3, 3)
    wrapped = surge.wrap(layer)
    assert isinstance(wrapped, surge.SurgeLayer) and surge.unwrap(wrapped) is layer


def test_training_steps_with_an_optimizer():
    """A few SGD steps on a wrapped model: λ moves, W_a learns, outputs stay the binary ones."""
    from tinybnn.optim import SGD

    rng = np.random.default_rng(8)
    model = surge.wrap(make_model(rng))
    opt = SGD(model.parameters(), lr=0.05)
    x = tb.tensor(rng.standard_normal((16, 5)).astype(np.float32))
    y = tb.tensor(rng.standard_normal((16, 2)).astype(np.float32))
    aux0 = model[1].aux_weight.data.copy()
    lams = []
    for _ in range(3):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        lams.append(model[1].lam)
    assert not np.array_equal(model[1].aux_weight.data, aux0)
    assert len(set(lams)) == 3 and all(l > 0 for l in lams)
    with tb.no_grad():
        wrapped_out = model(x).data.copy()
    plain = surge.unwrap(model)
    with tb.no_grad():
        assert np.array_equal(plain(x).data, wrapped_out)


def test_lambda_is_saved_in_the_state_dict():
    layer, wrapped, x, dout = linear_case()
    run(wrapped, x, dout)
    state = wrapped.state_dict()
    assert float(state["surge_lambda"]) == wrapped.lam
    _, other, _, _ = linear_case(seed=1)
    other.load_state_dict(state)
    assert other.lam == wrapped.lam
    assert np.array_equal(other.aux_weight.data, wrapped.aux_weight.data)
