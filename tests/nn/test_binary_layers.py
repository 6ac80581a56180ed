"""Binary layers: BinaryConv2d against an explicit NumPy convolution of sign(x) padded with
pad_value and sign(w); the quantizers' per-channel parameters; RPReLU, LearnableBias, Scale."""

import numpy as np
import pytest

import tinybnn as tb
from tinybnn import nn, quant
from tinybnn.errors import ConfigError, ShapeError
from tinybnn.gradcheck import gradcheck

rng = np.random.default_rng(2024)


def np_sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def np_conv(x, w, stride, padding, pad_value):
    """Direct cross-correlation with explicit loops over output pixels: x (N, C, H, W)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=pad_value)
    n, c, h, wd = xp.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return y


def np_conv_backward(x_shape, w, g, stride, padding):
    """dL/dx of Σ g·conv(x, w) (the padding border gets no gradient)."""
    n, c, h, wd = x_shape
    o, _, kh, kw = w.shape
    dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            dxp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += \
                np.einsum("no,ockl->nckl", g[:, :, i, j], w)
    return dxp[:, :, padding:padding + h, padding:padding + wd]


def np_conv_weight_grad(xpad, g, kh, kw, stride):
    dw = np.zeros((g.shape[1], xpad.shape[1], kh, kw))
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            patch = xpad[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            dw += np.einsum("no,nckl->ockl", g[:, :, i, j], patch)
    return dw


def float64(layer):
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    return layer


@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("stride", [1, 2])
def test_binary_conv2d_forward_is_a_conv_of_signs_padded_with_pad_value(pad_value, stride):
    layer = float64(nn.BinaryConv2d(3, 5, 3, stride=stride, padding=1, pad_value=pad_value,
                                    rng=1))
    x = rng.uniform(-2, 2, (2, 3, 7, 6))
    x[0, 0, 0, :3] = 0.0  # sign(0) = +1
    y = layer(tb.tensor(x)).data
    expected = np_conv(np_sign(x), np_sign(layer.weight.data), stride, 1, float(pad_value))
    np.testing.assert_allclose(y, expected, atol=1e-12)
    assert y.shape == (2, 5, (7 + 2 - 3) // stride + 1, (6 + 2 - 3) // stride + 1)


@pytest.mark.parametrize("pad_value, stride", [(0, 1), (-1, 2), (1, 2)])
def test_binary_conv2d_backward_with_clipped_ste(pad_value, stride):
    layer = float64(nn.BinaryConv2d(2, 3, 3, stride=stride, padding=1, pad_value=pad_value,
                                    rng=2))
    layer.weight.data = rng.uniform(-1.5, 1.5, layer.weight.shape)
    x = tb.tensor(rng.uniform(-2, 2, (2, 2, 5, 5)), requires_grad=True)
    y = layer(x)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    w, xv = layer.weight.data, x.data
    # ste_sign on both: the conv's gradients, windowed by 1[|·| <= 1]
    dx = np_conv_backward(xv.shape, np_sign(w), g, stride, 1) * (np.abs(xv) <= 1)
    np.testing.assert_allclose(x.grad, dx, atol=1e-12)
    xpad = np.pad(np_sign(xv), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=pad_value)
    dw = np_conv_weight_grad(xpad, g, 3, 3, stride) * (np.abs(w) <= 1)
    np.testing.assert_allclose(layer.weight.grad, dw, atol=1e-12)


def test_binary_conv2d_scale_bias_and_quantizers():
    layer = float64(nn.BinaryConv2d(3, 4, (3, 1), padding=(1, 0), bias=True, scale="mean_abs",
                                    input_quantizer="approx_sign", weight_quantizer="xnor",
                                    rng=3))
    x = rng.uniform(-2, 2, (2, 3, 5, 4))
    y = layer(tb.tensor(x)).data
    w = layer.weight.data
    alpha = np.abs(w).reshape(4, -1).mean(axis=1)
    wb = alpha.reshape(4, 1, 1, 1) * np_sign(w)                  # the xnor weight
    xpad = np.pad(np_sign(x), ((0, 0), (0, 0), (1, 1), (0, 0)))
    expected = np.zeros((2, 4, 5, 4))
    for i in range(5):
        for j in range(4):
            expected[:, :, i, j] = np.einsum("nckl,ockl->no", xpad[:, :, i:i + 3, j:j + 1], wb)
    expected = expected * alpha.reshape(1, 4, 1, 1) + layer.bias.data.reshape(1, 4, 1, 1)
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_binary_conv2d_without_quantizers_is_a_real_conv():
    layer = float64(nn.BinaryConv2d(2, 3, 3, padding=1, input_quantizer=None,
                                    weight_quantizer=None, rng=4))
    x = rng.standard_normal((1, 2, 4, 4))
    np.testing.assert_allclose(layer(tb.tensor(x)).data,
                               np_conv(x, layer.weight.data, 1, 1, 0.0), atol=1e-12)
    assert not layer.weight.binary


def test_binary_layers_expose_their_configuration():
    layer = nn.BinaryConv2d(3, 8, 3, stride=2, padding=1, pad_value=-1,
                            input_quantizer="ede", weight_quantizer="irnet_weight", scale=None)
    assert layer.weight.binary and list(layer.binary_parameters()) == [layer.weight]
    assert layer.input_quantizer.registry_name == "ede"
    assert layer.weight_quantizer.registry_name == "irnet_weight"
    assert layer.scale is None and layer.pad_value == -1.0
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 3), (2, 2), (1, 1))
    assert "pad_value=-1" in repr(layer)
    fc = nn.BinaryLinear(4, 2, weight_quantizer="magnitude_aware")
    assert fc.weight.binary and fc.weight_quantizer.registry_name == "magnitude_aware"
    # a k-bit weight quantizer does not make a binary (1-bit) parameter
    assert not nn.BinaryConv2d(3, 8, 3, weight_quantizer="dorefa_weight").weight.binary


@pytest.mark.parametrize("bad", [0.5, 2, -2, "zero", None, True])
def test_bad_pad_value_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="pad_value"):
        nn.BinaryConv2d(3, 4, 3, padding=1, pad_value=bad)


def test_per_channel_quantizers_are_sized_by_the_layer():
    conv = nn.BinaryConv2d(3, 6, 3, input_quantizer="rsign", weight_quantizer="recu_weight")
    assert conv.input_quantizer.b.shape == (3,) and conv.weight_quantizer.alpha.shape == (6,)
    x = tb.tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    y = conv(x)
    y.sum().backward()
    assert conv.input_quantizer.b.grad.shape == (3,)
    assert conv.weight_quantizer.alpha.grad.shape == (6,)
    with pytest.raises(ShapeError, match="channels"):
        conv(tb.tensor(np.ones((2, 4, 5, 5), dtype=np.float32)))
    # linear layers see features on the last axis: (N, C) and (N, T, C) both work
    fc = nn.BinaryLinear(5, 2, input_quantizer="rsign", weight_quantizer="lsq")
    assert fc.input_quantizer.b.shape == (5,)
    assert fc(tb.tensor(np.ones((3, 5), np.float32))).shape == (3, 2)
    assert fc(tb.tensor(np.ones((3, 4, 5), np.float32))).shape == (3, 4, 2)


def test_a_quantizer_instance_cannot_serve_two_widths():
    shared = quant.RSign()
    nn.BinaryConv2d(3, 4, 3, input_quantizer=shared)
    with pytest.raises(ConfigError, match="channels"):
        nn.BinaryConv2d(5, 4, 3, input_quantizer=shared)


def test_schedules_and_their_state_survive_a_checkpoint():
    def make():
        return nn.Sequential(nn.BinaryConv2d(2, 4, 3, input_quantizer="recu_act",
                                             weight_quantizer="recu_weight"),
                             nn.BinaryConv2d(4, 4, 3, weight_quantizer="progressive"))
    model = make()
    quant.advance_schedules(model, 20, 20)
    state = model.state_dict()
    restored = make()
    restored.load_state_dict(state)
    tau = [float(m.tau) for m in restored.modules() if isinstance(m, quant.RecuWeight)]
    temp = [float(m.temperature) for m in restored.modules() if isinstance(m, quant.Progressive)]
    assert tau == pytest.approx([0.99]) and temp == pytest.approx([0.9 ** 20])


# --- RPReLU, LearnableBias, Scale ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)])
def test_rprelu_forward_and_gradients(shape):
    layer = float64(nn.RPReLU(3))
    layer.gamma.data = rng.uniform(-0.5, 0.5, 3)
    layer.beta.data = rng.uniform(0.1, 0.5, 3)
    layer.zeta.data = rng.uniform(-0.5, 0.5, 3)
    x = rng.standard_normal(shape)
    view = (1, 3) + (1,) * (len(shape) - 2)
    g, b, z = (p.data.reshape(view) for p in (layer.gamma, layer.beta, layer.zeta))
    expected = np.where(x > g, x - g + z, b * (x - g) + z)
    np.testing.assert_allclose(layer(tb.tensor(x)).data, expected)
    x[np.abs(x - g) < 1e-3] += 0.01  # keep finite differences off the kink
    gradcheck(lambda t, *ps: layer(t), x, layer.gamma, layer.beta, layer.zeta)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)])
def test_learnable_bias_and_scale(shape):
    x = rng.standard_normal(shape)
    view = (1, 3) + (1,) * (len(shape) - 2)
    move = float64(nn.LearnableBias(3))
    move.bias.data = rng.standard_normal(3)
    np.testing.assert_allclose(move(tb.tensor(x)).data, x + move.bias.data.reshape(view))
    gradcheck(lambda t, b: move(t), x, move.bias)
    scale = float64(nn.Scale(3))
    np.testing.assert_allclose(scale(tb.tensor(x)).data, x)  # init 1
    scale.weight.data = rng.standard_normal(3)
    np.testing.assert_allclose(scale(tb.tensor(x)).data, x * scale.weight.data.reshape(view))
    gradcheck(lambda t, s: scale(t), x, scale.weight)


def test_channel_layers_check_the_channel_axis():
    for layer in (nn.RPReLU(3), nn.LearnableBias(3), nn.Scale(3)):
        with pytest.raises(ShapeError, match=r"\(N, 3"):
            layer(tb.tensor(np.ones((2, 4, 5), np.float32)))
