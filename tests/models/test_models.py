"""The CNN zoo: shapes, parameter counts, binary parameters, structure, gradient flow, and a
binary CNN that learns the 8×8 digits."""

import contextlib
import time

import numpy as np
import pytest

import tinybnn.functional as F
from tinybnn import Tensor, nn, no_grad
from tinybnn.errors import ConfigError
from tinybnn.models import available_models, make_model, resnet18, resnet20, vgg_small
from tinybnn.models.common import ZeroPadChannels, shortcut
from tinybnn.models.resnet import BinaryConvUnit


def images(n, shape=(3, 32, 32), seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32))


def conv_params(c_in, c_out, k=3):
    return c_in * c_out * k * k


def binary_convs(model):
    return [m for m in model.modules() if isinstance(m, nn.BinaryConv2d)]


# ---------------------------------------------------------------------------------------------
# Registry and shapes
# ---------------------------------------------------------------------------------------------

def test_models_are_registered():
    for name in ("resnet20", "resnet18", "vgg_small", "binary_cnn", "cnn"):
        assert name in available_models()


@pytest.mark.parametrize("variant", ["w1a1", "w1a32", "fp"])
def test_resnet20_shapes(variant):
    model = make_model("resnet20", input_shape=(3, 32, 32), num_classes=10, variant=variant,
                       rng=0)
    assert model(images(2)).shape == (2, 10)


@pytest.mark.parametrize("variant", ["w1a1", "fp"])
def test_resnet18_shapes(variant):
    model = resnet18(num_classes=10, variant=variant, rng=0).eval()
    with no_grad():
        assert model(images(1)).shape == (1, 10)


@pytest.mark.parametrize("options", [dict(variant="w1a1"), dict(variant="fp"),
                                     dict(variant="w1a1", binary_first_layer=True,
                                          binary_last_layer=True)])
def test_vgg_small_shapes(options):
    model = vgg_small(num_classes=10, rng=0, **options).eval()
    with no_grad():
        assert model(images(1)).shape == (1, 10)


@pytest.mark.parametrize("name", ["binary_cnn", "cnn"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_small_cnn_shapes(name, shape):
    model = make_model(name, input_shape=shape, num_classes=7, rng=0)
    assert model(images(3, shape)).shape == (3, 7)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="variant"):
        resnet20(variant="w2a2")
    with pytest.raises(ConfigError, match="w1a32"):
        resnet20(variant="w1a32", input_quantizer="approx_sign")
    with pytest.raises(ConfigError, match="fp"):
        resnet20(variant="fp", weight_quantizer="xnor")
    with pytest.raises(ConfigError, match="pad_value"):
        resnet20(pad_value=0.5)
    with pytest.raises(ConfigError, match="quantizer"):
        resnet20(input_quantizer="no_such_estimator")
    with pytest.raises(ConfigError, match="shortcut"):
        resnet20(shortcut="bogus")
    with pytest.raises(ConfigError):
        make_model("resnet20", input_shape=(64,), num_classes=10)


# ---------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------

def resnet20_fp_parameters(num_classes=10):
    """He et al.'s ResNet-20 with parameter-free shortcuts: convolutions + BN (γ, β) + fc."""
    convs = conv_params(3, 16) + 6 * conv_params(16, 16)
    convs += conv_params(16, 32) + 5 * conv_params(32, 32)
    convs += conv_params(32, 64) + 5 * conv_params(64, 64)
    bns = 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)
    return convs + bns + 64 * num_classes + num_classes


def test_resnet20_parameter_counts():
    assert resnet20_fp_parameters() == 269_722          # "0.27M" (He et al. 2016, Table 6)
    assert resnet20(variant="fp", rng=0).num_parameters() == 269_722
    # the binary variants add BatchNorm1d(64) before the classifier
    assert resnet20(variant="w1a1", rng=0).num_parameters() == 269_722 + 128
    assert resnet20(variant="w1a32", rng=0).num_parameters() == 269_722 + 128


def test_resnet18_and_vgg_parameter_counts():
    assert resnet18(variant="fp", rng=0).num_parameters() == 11_173_962      # "11.17M"
    assert resnet18(variant="w1a1", rng=0).num_parameters() == 11_173_962 + 2 * 512
    vgg = (conv_params(3, 128) + conv_params(128, 128) + conv_params(128, 256)
           + conv_params(256, 256) + conv_params(256, 512) + conv_params(512, 512)
           + 2 * (128 + 128 + 256 + 256 + 512 + 512) + 8192 * 10 + 10)
    assert vgg == 4_660_106
    assert vgg_small(variant="fp", rng=0).num_parameters() == vgg
    assert vgg_small(variant="w1a1", rng=0).num_parameters() == vgg


def test_binary_parameters_are_marked():
    model = resnet20(variant="w1a1", rng=0)
    binary = list(model.binary_parameters())
    assert len(binary) == 18
    assert {id(p) for p in binary} == {id(m.weight) for m in binary_convs(model)}
    assert sum(p.size for p in binary) == 267_264
    # first convolution and classifier stay real
    assert not model.conv1.weight.binary and not model.fc.weight.binary
    assert not list(resnet20(variant="fp", rng=0).binary_parameters())

    vgg = vgg_small(variant="w1a1", rng=0)
    assert len(list(vgg.binary_parameters())) == 5
    both = vgg_small(variant="w1a1", binary_first_layer=True, binary_last_layer=True, rng=0)
    assert len(list(both.binary_parameters())) == 7
    assert both.features[0].input_quantizer is None      # the image is never binarized
    assert isinstance(both.fc, nn.BinaryLinear)


def test_quantizers_are_selectable_per_role():
    model = resnet20(variant="w1a1", input_quantizer="approx_sign",
                     weight_quantizer="magnitude_aware", scale="mean_abs", pad_value=1.0, rng=0)
    convs = binary_convs(model)
    assert all(c.input_quantizer.registry_name == "approx_sign" for c in convs)
    assert all(c.weight_quantizer.registry_name == "magnitude_aware" for c in convs)
    assert len({id(c.input_quantizer) for c in convs}) == 18      # one quantizer per layer
    w1a32 = resnet20(variant="w1a32", weight_quantizer="xnor", rng=0)
    assert all(c.input_quantizer is None for c in binary_convs(w1a32))
    dorefa = resnet20(input_quantizer={"name": "dorefa_act", "bits": 1},
                      weight_quantizer={"name": "dorefa_weight", "bits": 1}, rng=0)
    assert all(c.weight_quantizer.bits == 1 for c in binary_convs(dorefa))


def test_kaiming_normal_initialisation():
    model = resnet20(variant="w1a1", rng=0)
    w = model.layer3[1].unit1.conv.weight.data               # 64·64·3·3, fan_in 576
    assert w.std() == pytest.approx(np.sqrt(2 / 576), rel=0.05)
    assert abs(w.mean()) < 0.01
    a = resnet20(rng=1).layer1[0].unit1.conv.weight.data
    b = resnet20(rng=1).layer1[0].unit1.conv.weight.data
    np.testing.assert_array_equal(a, b)                        # same seed, same model


# ---------------------------------------------------------------------------------------------
# Structure: every binary convolution has its own shortcut
# ---------------------------------------------------------------------------------------------

def test_every_binary_conv_of_resnet20_has_its_own_shortcut():
    model = resnet20(variant="w1a1", rng=0).eval()
    units = [m for m in model.modules() if isinstance(m, BinaryConvUnit)]
    assert len(units) == 18 == len(binary_convs(model))
    assert {id(u.conv) for u in units} == {id(c) for c in binary_convs(model)}

    # Check the data flow of every unit: out = hardtanh(BN(binconv(x)) + shortcut(x)), with the
    # shortcut computed independently in NumPy (identity, or 2×2 average + zero channels).
    seen = []

    def record(unit, inputs, output):
        seen.append((unit, inputs[0].data, output.data))

    removers = [u.register_forward_hook(record) for u in units]
    with no_grad():
        model(images(2))
    for r in removers:
        r()
    assert len(seen) == 18
    for unit, x, out in seen:
        with no_grad():
            main = unit.bn(unit.conv(Tensor(x))).data
        n, c, h, w = x.shape
        c_out, stride = unit.conv.weight.shape[0], unit.conv.stride
        stride = stride[0] if isinstance(stride, tuple) else stride
        skip = x
        if stride == 2:
            skip = x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
        if c_out != c:
            pad = (c_out - c) // 2
            skip = np.pad(skip, ((0, 0), (pad, c_out - c - pad), (0, 0), (0, 0)))
        np.testing.assert_allclose(out, np.clip(main + skip, -1, 1), rtol=1e-5, atol=1e-5)


def test_zero_pad_channels_forward_backward():
    x = Tensor(np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2),
               requires_grad=True)
    y = ZeroPadChannels(3, 8)(x)                 # 5 extra: 2 before, 3 after
    assert y.shape == (2, 8, 2, 2)
    np.testing.assert_array_equal(y.data[:, 2:5], x.data)
    assert not y.data[:, :2].any() and not y.data[:, 5:].any()
    g = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, g[:, 2:5])


def test_shortcut_kinds():
    x = images(2, (4, 8, 8))
    assert isinstance(shortcut(4, 4, 1, "avgpool"), nn.Identity)
    assert shortcut(4, 8, 2, "avgpool")(x).shape == (2, 8, 4, 4)
    assert shortcut(4, 8, 2, "subsample")(x).shape == (2, 8, 4, 4)
    np.testing.assert_array_equal(shortcut(4, 4, 2, "subsample")(x).data, x.data[:, :, ::2, ::2])
    assert shortcut(4, 8, 2, "conv", rng=0)(x).shape == (2, 8, 4, 4)
    assert shortcut(4, 8, 2, "avgpool_conv", rng=0)(x).shape == (2, 8, 4, 4)


# ---------------------------------------------------------------------------------------------
# Gradient flow
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["w1a1", "w1a32", "fp"])
def test_gradient_reaches_every_parameter_of_resnet20(variant):
    model = resnet20(variant=variant, rng=0)
    loss = F.cross_entropy(model(images(4)), np.array([0, 1, 2, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert p.grad.shape == p.shape and np.all(np.isfinite(p.grad)), name
    # through 18 binary convolutions, the stem still learns (thanks to the shortcuts)
    assert np.abs(model.conv1.weight.grad).sum() > 0


@pytest.mark.parametrize("build, shape", [
    (lambda: vgg_small(variant="w1a1", rng=0), (3, 32, 32)),
    (lambda: make_model("binary_cnn", input_shape=(1, 8, 8), num_classes=10, rng=0), (1, 8, 8)),
])
def test_gradient_reaches_every_parameter(build, shape):
    model = build()
    loss = F.cross_entropy(model(images(2, shape)), np.array([1, 2]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"


def test_resnet18_gradient_flows():
    model = resnet18(variant="w1a1", rng=0)
    loss = F.cross_entropy(model(images(2)), np.array([3, 4]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


# ---------------------------------------------------------------------------------------------
# The binary CNN learns the 8×8 digits
# ---------------------------------------------------------------------------------------------

def train_digits(model, epochs, lr, batch_size=32, seed=0):
    """Adam with cosine decay, random 1-pixel shifts (crop of the image padded by 1); returns the
    test accuracy."""
    from tinybnn.data import DataLoader, Normalize, dataset_info, load_dataset
    from tinybnn.data.transforms import Compose, RandomCrop
    from tinybnn.optim.adam import Adam

    info = dataset_info("digits")
    norm = Normalize(info.mean, info.std)
    x_train, y_train = load_dataset("digits", split="train")
    x_test, y_test = load_dataset("digits", split="test")
    loader = DataLoader(x_train, y_train, batch_size=batch_size, shuffle=True, rng=seed,
                        transform=Compose([RandomCrop(8, padding=1, rng=seed), norm]))
    optimizer = Adam(model.parameters(), lr=lr)
    steps, step = epochs * len(loader), 0
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            for group in optimizer.param_groups:          # cosine decay to 0
                group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
            optimizer.zero_grad()
            F.cross_entropy(model(Tensor(x)), y).backward()
            optimizer.step()
            step += 1
    model.eval()
    with no_grad():
        predictions = model(Tensor(norm(x_test))).data.argmax(axis=1)
    return float((predictions == y_test).mean())


def one_blas_thread():
    """The matrices of an 8×8 CNN are tiny: one BLAS thread is faster than several, and much
    faster when other processes load the CPU (idle BLAS threads spin)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1)


def test_binary_cnn_learns_digits():
    """W1A1 hidden convolutions (ApproxSign activations, clipped-STE weights), real first and
    last layers: >= 95 % on the 360 test digits (96.9 % with this seed; 96.7-97.5 % over seeds
    0-4), in about 10 s on one core."""
    start = time.perf_counter()
    model = make_model("binary_cnn", input_shape=(1, 8, 8), num_classes=10,
                       input_quantizer="approx_sign", rng=0)
    with one_blas_thread():
        accuracy = train_digits(model, epochs=10, lr=1e-2, batch_size=32, seed=0)
    elapsed = time.perf_counter() - start
    print(f"binary_cnn digits: test accuracy {accuracy:.4f} in {elapsed:.1f} s")
    assert accuracy >= 0.95


# ---------------------------------------------------------------------------------------------
# The training-speed bench and its PyTorch twin
# ---------------------------------------------------------------------------------------------

def test_bench_train_runs():
    from tinybnn.bench_train import bench_train, torch_available

    result = bench_train("resnet20", batch_size=4, steps=1, warmup=0, threads=1)
    assert result["tinybnn_images_per_s"] > 0 and result["threads"] == 1
    if torch_available():
        assert result["torch_images_per_s"] > 0
        assert result["slowdown"] == pytest.approx(result["tinybnn_seconds_per_step"]
                                                   / result["torch_seconds_per_step"])
    with pytest.raises(ConfigError):
        bench_train(steps=0)


@pytest.mark.parametrize("training", [False, True])
def test_torch_twin_computes_the_same_network(training):
    """bench_train compares like with like: with tinybnn's weights copied in, the PyTorch
    ResNet-20 gives the same logits, in evaluation and in training mode (batch statistics)."""
    torch = pytest.importorskip("torch")
    from tinybnn.bench_train import _torch_reference

    _, TorchBinaryResNet20 = _torch_reference()
    ours = resnet20(variant="w1a1", rng=0)
    twin = TorchBinaryResNet20(10)
    pairs = list(zip(ours.named_parameters(), twin.named_parameters()))
    assert len(pairs) == len(list(ours.parameters())) == len(list(twin.parameters()))
    with torch.no_grad():
        for (name, p), (twin_name, q) in pairs:
            assert tuple(p.shape) == tuple(q.shape), (name, twin_name)
            q.copy_(torch.from_numpy(p.data))
    ours.train(training)
    twin.train(training)
    x = images(4)
    with no_grad():
        expected = ours(x).data
    with torch.no_grad():
        got = twin(torch.from_numpy(x.data)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_unknown_model_option_is_a_config_error_listing_the_accepted_ones():
    from tinybnn.errors import ConfigError
    from tinybnn.models import make_model

    with pytest.raises(ConfigError, match=r"'binary_mlp' does not take the option\(s\) \['widht'\].*hidden"):
        make_model("binary_mlp", (1, 8, 8), 10, widht=3)
