"""The export: exported models compute what the trained model computes in eval mode.

Every equivalence test gives the model random weights AND batch norms with non-trivial running
statistics (calibrated on the test batch, with random-sign γ and random β), so that the folded
thresholds are really exercised: channels flip, signs are mixed, nothing is saturated.
"""

import importlib
import json
import zipfile

import numpy as np
import pytest

from tinybnn import Tensor, nn, no_grad, surge
from tinybnn.deploy import InferenceModel, export, export_checkpoint, export_command
from tinybnn.errors import CheckpointError, ConfigError, ShapeError
from tinybnn.kernels import available_backends, gpu, pack_bits
from tinybnn.models import binary_cnn, binary_mlp, resnet18, resnet20, vgg_small
from tinybnn.quant import DorefaWeight

# the module (``tinybnn.deploy.export`` is also the name of the function)
export_module = importlib.import_module("tinybnn.deploy.export")

CPU_BACKENDS = [b for b in ("numpy", "numba") if b in available_backends()]
BACKENDS = CPU_BACKENDS + [pytest.param("cupy", marks=pytest.mark.gpu)]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def calibrate(model, x, seed=0):
    """Give every batch norm running statistics near those of its input on ``x`` (mean shifted
    by up to ±0.3σ, variance scaled by 0.5-2), γ of random sign and size, random β.

    A forward hook replaces each batch norm's output by its output with the new statistics, so
    one eval pass calibrates the layers in order."""
    rng = np.random.default_rng(seed)

    def hook(module, inputs, output):
        data = inputs[0].data
        axes = (0,) + tuple(range(2, data.ndim))
        mean, var = data.mean(axis=axes), data.var(axis=axes)
        c = mean.shape[0]
        module.running_mean[...] = mean + rng.normal(0, 0.3, c) * np.sqrt(var + 1e-5)
        module.running_var[...] = var * rng.uniform(0.5, 2.0, c) + 1e-3
        module.weight.data[...] = rng.choice([-1.0, 1.0], c) * rng.uniform(0.5, 1.5, c)
        module.bias.data[...] = rng.normal(0, 0.3, c)
        return module.forward(inputs[0])

    removers = [m.register_forward_hook(hook) for m in model.modules()
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    model.eval()
    with no_grad():
        model(Tensor(x))
    for remove in removers:
        remove()
    return model


def reference(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data


def assert_same_logits(got, expected):
    """argmax identical; logits within float32 rounding of the logit scale."""
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


def images(shape, n, seed=1):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def kinds(inference):
    return [op.kind for op in inference.ops]


def modes(inference):
    return {op.attrs["mode"] for op in inference.ops if "mode" in op.attrs}


# ---------------------------------------------------------------------------------------------
# the zoo, exported once per module
# ---------------------------------------------------------------------------------------------

MODELS = {
    # name: (builder, input shape, batch)
    "binary_mlp": (lambda: binary_mlp((1, 8, 8), 10, hidden=64, rng=0), (1, 8, 8), 8),
    "binary_cnn": (lambda: binary_cnn(rng=0), (1, 8, 8), 8),
    "resnet20_w1a1": (lambda: resnet20(rng=0), (3, 32, 32), 4),
    "resnet20_w1a32": (lambda: resnet20(variant="w1a32", rng=0), (3, 32, 32), 2),
    "resnet18_w1a1": (lambda: resnet18(rng=0), (3, 32, 32), 2),
    "vgg_small_w1a1": (lambda: vgg_small(rng=0), (3, 32, 32), 2),
}


@pytest.fixture(scope="module")
def zoo():
    """name -> (model, x, reference logits, exported model), built lazily."""
    cache = {}

    def get(name):
        if name not in cache:
            build, shape, batch = MODELS[name]
            x = images(shape, batch)
            model = calibrate(build(), x)
            cache[name] = (model, x, reference(model, x), export(model, input_shape=shape))
        return cache[name]

    return get


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every kernel backend of this machine; "cupy" is marked gpu and skipped without a GPU."""
    if request.param == "cupy" and gpu.cupy_error() is not None:
        pytest.skip(f"no GPU: {gpu.cupy_error()}")
    return request.param


@pytest.mark.parametrize("name", list(MODELS))
def test_exported_zoo_model_equals_eval_model(zoo, name, backend):
    model, x, expected, inference = zoo(name)
    assert_same_logits(inference.predict(x, backend=backend), expected)


def test_binary_layers_are_packed_bits_and_thresholds_are_fused(zoo):
    _, _, _, mlp = zoo("binary_mlp")
    # BinaryLinear -> BN -> BinaryLinear: the BN became a threshold inside the first layer
    assert [op.attrs.get("mode") for op in mlp.ops if op.kind == "binary_linear"] == ["bits",
                                                                                       "float"]
    assert kinds(mlp).count("batch_norm") == 2          # after the real first layer, and last
    for op in mlp.binary_layers():
        weight = mlp.arrays[op.arrays["weight"]]
        assert weight.dtype == np.uint64 and weight.shape == (64, 1)   # 64 bits in one word
    _, _, _, vgg = zoo("vgg_small_w1a1")
    # conv pairs without a pool emit packed bits, pooled ones int dots -> pool -> threshold
    assert {"bits", "dots", "float"} <= modes(vgg)
    assert "threshold" in kinds(vgg)
    _, _, _, cnn = zoo("binary_cnn")
    assert "threshold" in kinds(cnn)


def test_residual_models_keep_exact_batch_norms_and_w1a32_unpacks(zoo):
    _, _, _, r20 = zoo("resnet20_w1a1")
    assert kinds(r20).count("binary_conv2d") == 18 and kinds(r20).count("add") == 18
    assert modes(r20) == {"float"}                       # the BN output joins a shortcut
    _, _, _, w1a32 = zoo("resnet20_w1a32")
    assert kinds(w1a32).count("binary_weight_conv2d") == 18
    assert all(w1a32.arrays[op.arrays["weight"]].dtype == np.uint64
               for op in w1a32.binary_layers())


def test_export_leaves_the_model_as_it_was():
    model = binary_mlp((1, 8, 8), 10, hidden=32, rng=0)
    model.train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    export(model)
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


# ---------------------------------------------------------------------------------------------
# padding, quantizers, scales
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad_value", [0.0, 1.0, -1.0])
@pytest.mark.parametrize("builder", ["binary_cnn", "resnet20"])
def test_every_padding_value(builder, pad_value):
    if builder == "binary_cnn":
        model, shape = binary_cnn(pad_value=pad_value, rng=0), (1, 8, 8)
    else:
        model, shape = resnet20(pad_value=pad_value, rng=0), (3, 16, 16)
    x = images(shape, 4)
    calibrate(model, x)
    inference = export(model)
    assert {op.attrs["pad_value"] for op in inference.binary_layers()} == {pad_value}
    for backend in CPU_BACKENDS:
        assert_same_logits(inference.predict(x, backend=backend), reference(model, x))


def _randomize_quantizer_parameters(model, seed=3):
    """Non-trivial learned parameters: RSign/elastic shifts, elastic/ReCU α, learnable scales of
    both signs (a negative α turns a max-pool into a min-pool)."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        name = type(m).__name__
        if name in ("RSign", "Elastic"):
            m.b.data[...] = rng.normal(0.0, 0.3, m.b.shape)
        if name in ("Elastic", "RecuWeight"):
            m.alpha.data[...] = rng.uniform(0.5, 1.5, m.alpha.shape)
        if getattr(m, "scale", None) == "learnable":
            m.alpha.data[...] = rng.uniform(-0.5, 1.5, m.alpha.shape)
    return model


QUANTIZER_CASES = [
    # (input quantizer, weight quantizer, scale)
    ("ste_sign", "ste_sign", None),
    ("identity_ste", "identity_ste", None),
    ("approx_sign", "magnitude_aware", None),
    ("swish_sign", "xnor", None),
    ("ede", "irnet_weight", None),
    ("recu_act", "recu_weight", None),
    ("rsign", "ste_sign", "mean_abs"),
    ("rsign", "ste_sign", "learnable"),
    ("elastic", "ste_sign", None),
    ("approx_sign", DorefaWeight(bits=1), None),        # one E = mean|W| for the layer
]


@pytest.mark.parametrize("input_q, weight_q, scale", QUANTIZER_CASES)
def test_supported_quantizers_export(input_q, weight_q, scale):
    x = images((1, 8, 8), 6)
    for model in (binary_cnn(input_quantizer=input_q, weight_quantizer=weight_q, scale=scale,
                             rng=0),
                  binary_mlp((1, 8, 8), 10, hidden=48, input_quantizer=input_q,
                             weight_quantizer=weight_q, scale=scale, rng=0)):
        _randomize_quantizer_parameters(model)
        calibrate(model, x)
        inference = export(model)
        assert_same_logits(inference.predict(x, backend=CPU_BACKENDS[-1]), reference(model, x))


def test_progressive_weights_export_once_binary_and_not_before():
    model = binary_mlp((1, 8, 8), 10, hidden=32, weight_quantizer="progressive", rng=0)
    with pytest.raises(ConfigError, match="not binary yet"):
        export(model)
    for m in model.modules():
        if type(m).__name__ == "Progressive":
            m.set_progress(200, 200)                    # T = 0.9^200 < 1e-7
    x = images((1, 8, 8), 4)
    calibrate(model, x)
    assert_same_logits(export(model).predict(x), reference(model, x))


@pytest.mark.parametrize("spec, words", [
    ("heaviside", "{0, 1}"),
    ({"name": "dorefa_act", "bits": 2}, "{0, 1}"),
    ({"name": "dorefa_act", "bits": 1}, "{0, 1}"),
    ({"name": "elastic", "signed": False}, "unsigned"),
    ({"name": "lsq", "bits": 2}, "2 bits"),
])
def test_unsupported_input_quantizer_is_a_config_error_naming_it(spec, words):
    model = binary_mlp((1, 8, 8), 10, hidden=32, rng=0)
    quantizer = dict(spec) if isinstance(spec, dict) else {"name": spec}
    from tinybnn.quant import make_quantizer

    layer = model[3]
    layer.input_quantizer = make_quantizer(quantizer.pop("name"), **quantizer)
    with pytest.raises(ConfigError) as error:
        export(model)
    message = str(error.value)
    assert "input quantizer" in message and words in message and "3" in message


@pytest.mark.parametrize("spec, words", [
    ({"name": "lsq", "bits": 2}, "2 bits"),
    ({"name": "dorefa_weight", "bits": 2}, "2 bits"),
])
def test_multibit_weight_quantizer_is_a_config_error(spec, words):
    from tinybnn.quant import make_quantizer

    model = binary_mlp((1, 8, 8), 10, hidden=32, rng=0)
    options = dict(spec)
    model[3].weight_quantizer = make_quantizer(options.pop("name"), **options)
    with pytest.raises(ConfigError, match=words):
        export(model)


def test_weight_quantizer_without_one_magnitude_per_channel_is_refused():
    from tinybnn.quant import Quantizer

    class Rounder(Quantizer):
        def forward(self, w):
            return w * 2                                # real values: not ±m

    model = binary_mlp((1, 8, 8), 10, hidden=32, rng=0)
    model[3].weight_quantizer = Rounder()
    with pytest.raises(ConfigError, match="±m per output channel"):
        export(model)


def test_unknown_module_type_is_named():
    class Mystery(nn.Module):
        def forward(self, x):
            return x

    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=0), Mystery())
    with pytest.raises(ConfigError, match="module type Mystery is not supported"):
        export(model)


def test_batch_norm_without_running_statistics_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8, rng=0),
                          nn.BatchNorm1d(8, track_running_stats=False))
    with pytest.raises(ConfigError, match="running statistics"):
        export(model)


def _step_kinds(inference, backend):
    steps, _ = inference._plan(backend)
    return ["+".join(op.kind for op in step.ops) for step in steps]


def test_numba_plan_fuses_residual_units_into_the_convolutions(zoo):
    """On "numba" every binary conv -> batch_norm -> add -> hardtanh is one step (the float tail
    in the kernel's output stage), the two avg_pool2d -> pad_channels shortcuts included, and
    every unit but the last also writes its output's packed signs, which the next convolution
    reads; the values are those of the unfused ops, bit for bit."""
    _, x, _, r20 = zoo("resnet20_w1a1")
    step_kinds = _step_kinds(r20, "numba")
    assert step_kinds.count("binary_conv2d+batch_norm+add+hardtanh") == 16
    assert step_kinds.count("binary_conv2d+batch_norm+add+hardtanh+avg_pool2d+pad_channels") == 2
    assert "binary_conv2d" not in step_kinds and "avg_pool2d+pad_channels" not in step_kinds
    steps, _ = r20._plan("numba")
    convs = [step for step in steps if step.ops[0].kind == "binary_conv2d"]
    assert [len(step.outputs) for step in convs] == [2] * 17 + [1]
    assert [step.inputs[0] for step in convs[1:]] == [step.outputs[1] for step in convs[:-1]]
    assert len(_step_kinds(r20, "numpy")) == len(r20.ops)
    np.testing.assert_array_equal(r20.predict(x, backend="numba"),
                                  r20.predict(x, backend="numpy"))


def _run_ops(rt, ops, x, residual=None):
    """Run a chain of ops one after the other (the add takes ``residual``)."""
    for op in ops:
        x = export_module.OPS[op.kind].run(rt, op, *((x, residual) if op.kind == "add" else (x,)))
    return x


def _conv_step(inference, shortcut: bool):
    """The conv, its tail ops and its shortcut ops of the first fused convolution step with or
    without a pooled shortcut."""
    step = next(s for s in inference._plan("numba")[0] if s.ops[0].kind == "binary_conv2d"
                and (s.ops[-1].kind == "pad_channels") == shortcut)
    chain = [op for op in step.ops if op.kind not in ("avg_pool2d", "pad_channels")]
    return chain[0], tuple(chain[1:]), tuple(op for op in step.ops if op not in chain)


@pytest.mark.parametrize("residual_shape", [(2, 16, 32, 32), (1, 16, 1, 1)])
@pytest.mark.parametrize("sign_bits", [False, True])
def test_fused_convolution_step_equals_the_separate_ops(zoo, residual_shape, sign_bits):
    """A residual of the output's shape goes into the kernel; one that broadcasts falls back to
    the convolution followed by the fused float pass. Both give the separate ops' values, and
    with sign_bits their packed signs."""
    _, _, _, r20 = zoo("resnet20_w1a1")
    conv, tail, _ = _conv_step(r20, shortcut=False)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 32, 32)).astype(np.float32)
    residual = rng.standard_normal(residual_shape).astype(np.float32)
    fused = export_module._run_conv_tail(r20._runtime("numba"), x, residual, conv=conv,
                                         members=tail, sign_bits=sign_bits)
    expected = _run_ops(r20._runtime("numpy"), [conv, *tail], x, residual)
    if sign_bits:
        fused, bits = fused
        assert bits.width == 32
        np.testing.assert_array_equal(bits.words, pack_bits(expected, axis=-1))
    np.testing.assert_array_equal(fused, expected)


@pytest.mark.parametrize("residual_shape", [(2, 16, 32, 32), (2, 16, 2, 2)])
def test_fused_shortcut_step_equals_the_separate_ops(zoo, residual_shape):
    """A downsampling unit: the avg_pool2d -> pad_channels shortcut of its input is computed in
    the convolution's output stage (or, for an input the kernel cannot pool into the output's
    shape, by the separate ops); the values are those of the separate ops."""
    _, _, _, r20 = zoo("resnet20_w1a1")
    conv, tail, shortcut = _conv_step(r20, shortcut=True)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 32, 32)).astype(np.float32)
    block_input = rng.standard_normal(residual_shape).astype(np.float32)
    fused = export_module._run_conv_tail(r20._runtime("numba"), x, block_input, conv=conv,
                                         members=tail, shortcut=shortcut)
    numpy_rt = r20._runtime("numpy")
    expected = _run_ops(numpy_rt, [conv, *tail], x, _run_ops(numpy_rt, shortcut, block_input))
    assert fused.shape == (2, 32, 16, 16)
    np.testing.assert_array_equal(fused, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_pool_and_pad_step_equals_the_separate_ops(zoo, dtype):
    """The compiled avg_pool2d -> pad_channels pass (float32), and its fallback for anything else,
    give the values of the two ops."""
    _, _, _, r20 = zoo("resnet20_w1a1")
    _, _, (pool, pad) = _conv_step(r20, shortcut=True)
    x = np.random.default_rng(4).standard_normal((3, 16, 32, 32)).astype(dtype)
    fused = export_module._run_pool_pad(r20._runtime("numba"), x, pool=pool, pad=pad)
    expected = _run_ops(r20._runtime("numpy"), [pool, pad], x)
    assert fused.dtype == dtype and fused.shape == (3, 32, 16, 16)
    np.testing.assert_array_equal(fused, expected)


def test_non_monotone_chain_is_left_unfused_and_still_exact():
    """Between the first two binary layers an RPReLU with a negative slope and a negative shift
    (a V shape lowered below 0): its sign is +, -, + along the dot, so no threshold reproduces it
    and the float path stays. Between the next two, PReLU -> LearnableBias -> Scale with positive
    slopes is monotone and becomes a threshold."""
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32, rng=0), nn.BatchNorm1d(32),
        nn.BinaryLinear(32, 32, rng=1), nn.BatchNorm1d(32), nn.RPReLU(32),
        nn.BinaryLinear(32, 32, rng=2), nn.BatchNorm1d(32), nn.PReLU(32), nn.LearnableBias(32),
        nn.Scale(32), nn.BinaryLinear(32, 10, rng=3))
    model[5].beta.data[...] = -0.5
    model[5].zeta.data[...] = -0.3
    model[8].weight.data[...] = np.linspace(0.1, 1.0, 32, dtype=np.float32)
    model[9].bias.data[...] = np.linspace(-0.5, 0.5, 32, dtype=np.float32)
    model[10].weight.data[...] = np.linspace(0.5, 1.5, 32, dtype=np.float32)
    x = images((1, 8, 8), 16)
    calibrate(model, x)
    inference = export(model)
    layer_modes = [op.attrs["mode"] for op in inference.ops if op.kind == "binary_linear"]
    assert layer_modes == ["float", "bits", "float"]
    assert "rprelu" in kinds(inference) and "prelu" not in kinds(inference)
    for backend in CPU_BACKENDS:
        assert_same_logits(inference.predict(x, backend=backend), reference(model, x))


# ---------------------------------------------------------------------------------------------
# SURGE, folding, predict
# ---------------------------------------------------------------------------------------------


def test_surge_wrapped_model_exports_to_the_plain_model():
    x = images((3, 16, 16), 3)
    plain = calibrate(resnet20(rng=0), x)
    wrapped = surge.wrap(calibrate(resnet20(rng=0), x), eta=0.01)
    assert surge.surge_layers(wrapped)
    got = export(wrapped).predict(x)
    assert_same_logits(got, reference(plain, x))
    np.testing.assert_array_equal(got, export(plain).predict(x))
    assert surge.surge_layers(wrapped), "the export must not unwrap the caller's model"


def test_folded_batch_norms_are_close_and_fewer_ops(zoo):
    model, x, expected, exact = zoo("resnet20_w1a1")
    folded = export(model, exact=False)
    assert kinds(folded).count("batch_norm") < kinds(exact).count("batch_norm")
    got = folded.predict(x)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_predict_checks_shape_backend_and_chunks(zoo):
    model, x, expected, inference = zoo("binary_cnn")
    with pytest.raises(ShapeError, match="shape"):
        inference.predict(x[0])
    with pytest.raises(ConfigError, match="unknown kernel backend"):
        inference.predict(x, backend="tpu")
    # smaller batches may change BLAS's summation order in the real layers: rounding only
    np.testing.assert_allclose(inference.predict(x, batch_size=3), inference.predict(x),
                               rtol=1e-5, atol=1e-6)
    rows = inference.profile(x, backend="numpy")
    assert len(rows) == len(inference.ops) and abs(sum(r["share"] for r in rows) - 1) < 1e-6
    assert "binary_conv2d" in inference.describe()


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def test_save_load_round_trip_is_identical(zoo, tmp_path):
    _, x, _, inference = zoo("vgg_small_w1a1")
    path = inference.save(tmp_path / "vgg.npz")
    assert not list(tmp_path.glob(".*.tmp"))             # the temporary file was renamed
    loaded = InferenceModel.load(path)
    np.testing.assert_array_equal(loaded.predict(x), inference.predict(x))
    assert [op.to_json() for op in loaded.ops] == [op.to_json() for op in inference.ops]
    with np.load(path, allow_pickle=False) as archive:   # plain arrays, no pickle
        meta = json.loads(archive["__meta__"].tobytes())
        key = loaded.binary_layers()[0].arrays["weight"]
        assert archive[key].dtype == np.uint64
    assert meta["format"] == "tinybnn-inference" and meta["version"] == 1
    assert len(meta["sha256"]) == 64


@pytest.fixture
def saved(zoo, tmp_path):
    return zoo("binary_mlp")[3].save(tmp_path / "mlp.npz")


def test_truncated_file_is_rejected(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as error:
        InferenceModel.load(saved)
    assert str(saved) in str(error.value)


def test_corrupted_bytes_are_rejected(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:                # damage one weight array's data
        info = next(i for i in archive.infolist() if "weight" in i.filename)
    start = info.header_offset + 30 + len(info.filename) + 200
    data[start:start + 8] = bytes(b ^ 0xFF for b in data[start:start + 8])
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(saved.name)):
        InferenceModel.load(saved)


def _rewrite(path, change):
    """Rewrite the archive with ``change(arrays, meta)`` applied (a consistent zip file)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays.pop("__meta__").tobytes())
    change(arrays, meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_checksum_mismatch_is_rejected(saved):
    def flip_a_bit(arrays, meta):
        key = next(k for k, a in arrays.items() if a.dtype == np.uint64)
        arrays[key] = arrays[key] ^ np.uint64(1)
    _rewrite(saved, flip_a_bit)
    with pytest.raises(CheckpointError, match="checksum"):
        InferenceModel.load(saved)


@pytest.mark.parametrize("change, words", [
    (lambda arrays, meta: arrays.pop(next(iter(meta["arrays"]))), "missing"),
    (lambda arrays, meta: meta["arrays"][next(iter(meta["arrays"]))].update(shape=[1, 2, 3]),
     "metadata says"),
    (lambda arrays, meta: meta.update(version=99), "version 99"),
    (lambda arrays, meta: meta.update(format="tinybnn-checkpoint"), "training checkpoint"),
    (lambda arrays, meta: meta["ops"][0].update(kind="teleport"), "unknown kind"),
])
def test_mismatched_file_is_rejected(saved, change, words):
    _rewrite(saved, change)
    with pytest.raises(CheckpointError, match=words):
        InferenceModel.load(saved)


def test_missing_and_foreign_files_are_rejected(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        InferenceModel.load(tmp_path / "nothing.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match="single .npy array"):
        InferenceModel.load(tmp_path / "single.npy")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an exported tinybnn model"):
        InferenceModel.load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        InferenceModel.load(tmp_path / "text.npz")


# ---------------------------------------------------------------------------------------------
# checkpoints and the command line helper
# ---------------------------------------------------------------------------------------------


def test_export_checkpoint_rebuilds_the_trained_model(tmp_path):
    from tinybnn.train.checkpoint import save_checkpoint

    config = {"model": "binary_cnn", "data": "digits", "model_options": {"width": 8},
              "surge": 0.01}
    model = surge.wrap(binary_cnn(width=8, rng=0), eta=0.01)
    x = images((1, 8, 8), 5)
    calibrate(model, x)
    checkpoint = save_checkpoint(tmp_path / "checkpoint.npz", model, epoch=3, config=config)
    line = export_command(checkpoint)
    out = tmp_path / "checkpoint.inference.npz"
    assert line.startswith("exported binary_cnn (digits, epoch 3) to ") and str(out) in line
    assert "argmax equal" in line
    loaded = InferenceModel.load(out)
    assert loaded.meta["input_shape"] == [1, 8, 8] and loaded.meta["check"]["argmax_equal"]
    assert_same_logits(loaded.predict(x), reference(model, x))

    inference = export_checkpoint(checkpoint, tmp_path / "again.npz", check=False)
    np.testing.assert_array_equal(inference.predict(x), loaded.predict(x))


def test_export_checkpoint_without_model_config_is_refused(tmp_path):
    from tinybnn.train.checkpoint import save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "c.npz", binary_cnn(width=8, rng=0), config={})
    with pytest.raises(CheckpointError, match="does not say which model"):
        export_checkpoint(checkpoint, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


# ---------------------------------------------------------------------------------------------
# the GPU path
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cuda_on_cpu(tmp_path_factory):
    """The CUDA kernels of xnor.cu compiled for the CPU (the kernels' test harness)."""
    from tinybnn.kernels import harness

    if harness.gxx_path() is None:
        pytest.skip("g++ is not installed: cannot run the CUDA kernels on the CPU harness")
    library = harness.build_cpu_harness(tmp_path_factory.mktemp("cuda_on_cpu"))
    return gpu.CudaOps(harness.CpuLauncher(library), np, max_blocks=3)


def test_cupy_backend_path_on_the_cpu_harness(zoo, cuda_on_cpu, monkeypatch):
    """backend="cupy" through the whole interpreter, with the CUDA kernels run on the CPU and
    NumPy standing in for CuPy's arrays."""
    monkeypatch.setattr(gpu, "cupy_error", lambda: None)
    monkeypatch.setattr(gpu, "_cupy_ops", lambda: cuda_on_cpu)
    monkeypatch.setattr(export_module, "_array_module", lambda backend: np)
    for name in ("binary_mlp", "binary_cnn"):
        model, x, expected, inference = zoo(name)
        assert_same_logits(inference.predict(x, backend="cupy"), expected)


# ---------------------------------------------------------------------------------------------
# the benchmarks run (their timings are reported, never asserted)
# ---------------------------------------------------------------------------------------------


def test_bench_infer_runs_and_reports():
    from tinybnn.deploy.bench import bench_infer, format_table

    result = bench_infer(batch_size=2, repeats=1, warmup_seconds=0.0)
    assert result["max_abs_logit_diff"] == 0.0          # the export is exact
    assert result["exported_numba_images_per_s"] > 0 and result["tinybnn_float_images_per_s"] > 0
    assert any(kind.startswith("binary_conv2d") for kind in result["time_share_by_op"])
    assert "exported_numba_images_per_s" in format_table(result)


def test_model_size_report_meets_the_size_target():
    from tinybnn.deploy.bench import TARGET_SIZE_RATIO, model_size_report

    report = model_size_report()
    assert report["binary_weights"] == 10_985_472          # the 16 binary 3×3 convolutions
    assert report["packed_weight_bytes"] == 10_985_472 // 8
    assert report["size_ratio"] >= TARGET_SIZE_RATIO
