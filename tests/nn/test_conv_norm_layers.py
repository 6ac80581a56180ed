"""Conv2d, pooling and normalization layers: parameters, buffers, modes, and a small CNN."""

import math

import numpy as np
import pytest

import tinybnn as tb
import tinybnn.functional as F
import tinybnn.nn as nn

rng = np.random.default_rng(5)


def test_conv2d_parameters_and_init():
    conv = nn.Conv2d(4, 8, (3, 5), stride=2, padding=1, rng=np.random.default_rng(0))
    assert conv.weight.shape == (8, 4, 3, 5) and conv.bias.shape == (8,)
    assert conv.weight.dtype == np.float32
    bound = 1 / math.sqrt(4 * 3 * 5)             # kaiming_uniform(a=√5) = U(±1/√fan_in)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.8 * bound
    again = nn.Conv2d(4, 8, (3, 5), stride=2, padding=1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(conv.weight.data, again.weight.data)
    assert nn.Conv2d(4, 8, 3, bias=False).bias is None
    assert [name for name, _ in conv.named_parameters()] == ["weight", "bias"]


def test_conv2d_forward_is_functional_conv2d():
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    x = tb.tensor(rng.standard_normal((2, 3, 8, 7)).astype(np.float32))
    y = conv(x)
    assert y.shape == (2, 5, 4, 4)
    np.testing.assert_array_equal(y.data, F.conv2d(x, conv.weight, conv.bias, 2, 1).data)


def test_conv2d_channel_mismatch_names_both_numbers():
    with pytest.raises(tb.ShapeError, match=r"input has 4 channels but the weight expects 3"):
        nn.Conv2d(3, 5, 3)(tb.tensor(np.zeros((1, 4, 6, 6), np.float32)))


def test_pool_layers():
    x = tb.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.MaxPool2d(3, 2, 1)(x).shape == (2, 3, 4, 4)
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).data, F.avg_pool2d(x, 2).data)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x).data,
                               x.data.mean(axis=(2, 3), keepdims=True), rtol=1e-6)


def test_batchnorm2d_buffers_and_modes():
    bn = nn.BatchNorm2d(3)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 3

    y = bn(tb.tensor(x))                        # training: batch statistics, running update
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    mean = x.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1),
                               rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    assert "num_batches_tracked" in bn.state_dict()

    bn.eval()                                    # eval: running statistics, no update
    before = bn.running_mean.copy()
    y = bn(tb.tensor(x))
    expected = (x - bn.running_mean[:, None, None]) / np.sqrt(bn.running_var[:, None, None]
                                                               + 1e-5)
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, before)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_state_dict_round_trip():
    bn = nn.BatchNorm2d(3)
    bn(tb.tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32)))
    other = nn.BatchNorm2d(3)
    other.load_state_dict(bn.state_dict())
    np.testing.assert_array_equal(other.running_mean, bn.running_mean)
    np.testing.assert_array_equal(other.running_var, bn.running_var)
    other(tb.tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32)))  # still updates
    assert int(other.num_batches_tracked) == 2


def test_batchnorm1d_and_options():
    bn = nn.BatchNorm1d(4, affine=False)
    assert list(bn.parameters()) == []
    for shape in [(6, 4), (6, 4, 3)]:
        y = bn(tb.tensor(rng.standard_normal(shape).astype(np.float32)))
        assert y.shape == shape
    untracked = nn.BatchNorm1d(4, track_running_stats=False).eval()
    y = untracked(tb.tensor(rng.standard_normal((8, 4)).astype(np.float32) + 5))
    np.testing.assert_allclose(y.data.mean(axis=0), 0, atol=1e-5)   # batch statistics in eval
    with pytest.raises(tb.ShapeError, match="input has 5 channels but the layer was built for 4"):
        nn.BatchNorm1d(4)(tb.tensor(np.zeros((2, 5), np.float32)))
    with pytest.raises(tb.ShapeError, match=r"\(N, C, H, W\)"):
        nn.BatchNorm2d(4)(tb.tensor(np.zeros((2, 4), np.float32)))


def test_layernorm_layer():
    ln = nn.LayerNorm((4, 5))
    x = tb.tensor(rng.standard_normal((2, 3, 4, 5)).astype(np.float32), requires_grad=True)
    y = ln(x)
    np.testing.assert_allclose(y.data.mean(axis=(2, 3)), 0, atol=1e-5)
    y.sum().backward()
    assert ln.weight.grad.shape == (4, 5) and ln.bias.grad.shape == (4, 5)
    assert nn.LayerNorm(5, elementwise_affine=False).weight is None


def test_small_cnn_trains_end_to_end():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=np.random.default_rng(1)),
                          nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, stride=2, padding=1, rng=np.random.default_rng(2)),
                          nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 4, rng=np.random.default_rng(3)))
    x = tb.tensor(rng.standard_normal((16, 3, 8, 8)).astype(np.float32))
    labels = rng.integers(0, 4, 16)
    losses = []
    for _ in range(30):
        model.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        for p in model.parameters():
            assert p.grad is not None and p.grad.shape == p.shape
            p.data -= 0.2 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_layers_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
                                 torch.nn.BatchNorm2d(4))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((5, 3, 9, 9)).astype(np.float32)
    for _ in range(2):
        y, ty = ours(tb.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-6)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(tb.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
