"""binary_conv2d: every backend, padding mode, stride and output transform, bit-exact against a
plain float ±1 convolution."""

import numpy as np
import pytest

from tinybnn.errors import ConfigError, ShapeError
from tinybnn.kernels import (binary_conv2d, pack_bits, sign_threshold, threshold_from_values,
                             unpack_bits, zero_padding_correction)
from tinybnn.kernels.conv import FloatTail

from .references import float_conv, random_real

# (B, C, H, W, Cout, kernel, stride, padding): odd sizes, K = C*kh*kw below 64, at 64 and above,
# non-square kernels, Cout not a multiple of 4, batch rows not a multiple of 64.
GEOMETRIES = [
    (2, 3, 7, 9, 5, (3, 3), 1, 1),
    (2, 3, 7, 9, 5, (3, 3), 2, 1),
    (1, 20, 5, 6, 6, (3, 3), 2, 2),
    (3, 8, 8, 8, 16, (3, 3), 1, 1),
    (2, 5, 9, 7, 3, (1, 1), 1, 0),
    (1, 2, 11, 70, 4, (3, 5), (2, 1), (1, 2)),
    (2, 64, 4, 4, 8, (3, 3), 1, 1),
]
PAD_VALUES = [0.0, 1.0, -1.0]


def _case(geometry, seed):
    b, c, h, w, cout, kernel, stride, padding = geometry
    rng = np.random.default_rng(seed)
    kh, kw = kernel
    x = random_real(rng, (b, c, h, w))
    weights = random_real(rng, (cout, c, kh, kw))
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    return x, weights, pack_bits(weights.reshape(cout, -1)), pair(stride), pair(padding)


@pytest.mark.parametrize("pad_value", PAD_VALUES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_dots_match_float_convolution(backend, geometry, pad_value):
    x, weights, w_packed, stride, padding = _case(geometry, seed=len(str(geometry)))
    out = binary_conv2d(x, w_packed, weights.shape[2:], stride=stride, padding=padding,
                        pad_value=pad_value, backend=backend)
    expected = float_conv(x, weights, stride, padding, pad_value)
    assert out.dtype == np.int32 and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("pad_value", PAD_VALUES)
def test_scale_and_bias_output_is_exact_float32(backend, pad_value):
    x, weights, w_packed, stride, padding = _case(GEOMETRIES[1], seed=3)
    rng = np.random.default_rng(4)
    scale = rng.normal(size=5).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    out = binary_conv2d(x, w_packed, 3, stride=stride, padding=padding, pad_value=pad_value,
                        scale=scale, bias=bias, backend=backend)
    dots = float_conv(x, weights, stride, padding, pad_value).astype(np.float32)
    expected = dots * scale[:, None, None] + bias[:, None, None]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("geometry", [GEOMETRIES[0], GEOMETRIES[5]])
def test_threshold_output_is_the_packed_sign_of_the_next_layer(backend, geometry):
    x, weights, w_packed, stride, padding = _case(geometry, seed=5)
    cout = weights.shape[0]
    rng = np.random.default_rng(6)
    threshold = rng.integers(-6, 7, size=cout)
    flip = rng.choice([-1, 1], size=cout)
    out = binary_conv2d(x, w_packed, weights.shape[2:], stride=stride, padding=padding,
                        threshold=threshold, flip=flip, backend=backend)
    dots = float_conv(x, weights, stride, padding, 0.0)
    bits = dots * flip[:, None, None] >= threshold[:, None, None]
    np.testing.assert_array_equal(out, pack_bits(bits, axis=-1))
    assert out.shape == dots.shape[:3] + (-(-dots.shape[3] // 64),)


def _tail_case(seed, parts):
    """x, packed weights, scale, bias, and a FloatTail with the named ``parts`` for
    GEOMETRIES[3] (3x3, padding 1, 16 output channels)."""
    x, weights, w_packed, stride, padding = _case(GEOMETRIES[3], seed=seed)
    rng = np.random.default_rng(seed)
    channel = lambda: rng.normal(size=16).astype(np.float32)  # noqa: E731
    values = {"mean": channel(), "inv_std": np.abs(channel()) + 0.5, "gamma": channel(),
              "beta": channel(), "residual": random_real(rng, (3, 16, 8, 8)), "clip": (-1.0, 1.0)}
    return (x, weights, w_packed, stride, padding, channel(), channel(),
            FloatTail(**{name: values[name] for name in parts}))


@pytest.mark.parametrize("parts", [("mean", "inv_std", "gamma", "beta", "residual", "clip"),
                                   ("mean", "inv_std", "clip"), ("residual",), ()])
def test_float_tail_is_the_separate_float32_ops_in_order(backend, parts):
    """scale/bias output, then ((y - mean) * inv_std) * gamma + beta, + residual, clip: each a
    float32 op of its own, as NumPy computes them one after the other."""
    x, weights, w_packed, stride, padding, scale, bias, tail = _tail_case(8, parts)
    out = binary_conv2d(x, w_packed, 3, stride=stride, padding=padding, scale=scale, bias=bias,
                        tail=tail, backend=backend)
    y = float_conv(x, weights, stride, padding, 0.0).astype(np.float32)
    y = y * scale[:, None, None] + bias[:, None, None]
    for name in ("mean", "inv_std", "gamma", "beta"):
        value = getattr(tail, name)
        if value is not None:
            operation = np.subtract if name == "mean" else (
                np.add if name == "beta" else np.multiply)
            y = operation(y, value[:, None, None])
    if tail.residual is not None:
        y = y + tail.residual
    if tail.clip is not None:
        y = np.clip(y, *tail.clip)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, y)


def test_float_tail_keeps_negative_zero():
    """Absent tail parts leave every value as it is, -0.0 included (the numba kernel applies
    them as identities: - 0, * 1, + -0.0)."""
    x = np.ones((1, 1, 3, 3), np.float32)
    w_packed = pack_bits(np.ones((2, 9)))
    out = binary_conv2d(x, w_packed, 3, scale=np.array([0.0, -0.0], np.float32),
                        bias=np.array([-0.0, -0.0], np.float32),
                        tail=FloatTail(clip=(-1.0, 1.0)), backend="numba")
    assert np.signbit(out.ravel()).tolist() == [False, True]


def test_float_tail_errors_name_the_problem():
    x, _, w_packed, stride, padding, scale, bias, tail = _tail_case(9, ("residual",))
    with pytest.raises(ConfigError, match="tail= acts on the float output"):
        binary_conv2d(x, w_packed, 3, padding=padding, tail=tail)
    with pytest.raises(ConfigError, match="tail must be a FloatTail"):
        binary_conv2d(x, w_packed, 3, padding=padding, scale=scale, tail=(1, 2))
    with pytest.raises(ShapeError, match=r"tail.residual must have the output's shape"):
        binary_conv2d(x, w_packed, 3, padding=padding, scale=scale,
                      tail=FloatTail(residual=np.ones((3, 16, 4, 4), np.float32)))
    with pytest.raises(ShapeError, match=r"tail.residual must have the output's shape"):
        binary_conv2d(x, w_packed, 3, padding=padding, scale=scale,
                      tail=FloatTail(residual=np.ones((3, 16, 8, 8), np.float32),
                                     residual_pool=2))
    with pytest.raises(ShapeError, match=r"tail.residual must have the output's shape"):
        binary_conv2d(x, w_packed, 3, padding=padding, scale=scale,
                      tail=FloatTail(residual=np.ones((3, 16, 8, 8), np.float32),
                                     residual_offset=1))
    with pytest.raises(ConfigError, match="residual_pool must be an int >= 1"):
        binary_conv2d(x, w_packed, 3, padding=padding, scale=scale,
                      tail=FloatTail(residual=np.ones((3, 16, 8, 8), np.float32),
                                     residual_pool=0))
    with pytest.raises(ConfigError, match="sign_bits= packs the signs of the float output"):
        binary_conv2d(x, w_packed, 3, padding=padding, sign_bits=True)
    with pytest.raises(ShapeError, match=r"tail.gamma must have one value per output channel"):
        binary_conv2d(x, w_packed, 3, padding=padding, scale=scale,
                      tail=FloatTail(gamma=np.ones(3, np.float32)))


def test_batch_norm_then_sign_folds_exactly_with_any_gamma_sign(backend):
    """threshold output with sign_threshold(scale, bias) == the float output's sign, including
    negative and zero gamma and biases that put the threshold on an exact dot value."""
    x, weights, w_packed, stride, padding = _case(GEOMETRIES[3], seed=7)
    rng = np.random.default_rng(8)
    gamma = rng.normal(size=16).astype(np.float32)
    gamma[:3] = [0.0, -1.0, -0.5]
    scale = gamma / np.sqrt(rng.random(16).astype(np.float32) + 0.1)
    bias = rng.normal(size=16).astype(np.float32) * 3
    bias[1], bias[2] = 2.0, -4.0                      # boundaries at dot = 2 and dot = -8
    k = 8 * 9
    flip, threshold = sign_threshold(scale, bias, k)
    assert set(np.unique(flip)) <= {-1, 1}
    bits = binary_conv2d(x, w_packed, 3, padding=1, threshold=threshold, flip=flip,
                         backend=backend)
    values = binary_conv2d(x, w_packed, 3, padding=1, scale=scale, bias=bias, backend=backend)
    np.testing.assert_array_equal(bits, pack_bits(values >= 0, axis=-1))


def test_sign_threshold_agrees_with_the_float_expression_at_every_dot():
    rng = np.random.default_rng(9)
    k = 50
    scale = np.concatenate([rng.normal(size=40), [0.0, 0.0, 1e-30, -1e-30]]).astype(np.float32)
    bias = np.concatenate([rng.normal(size=40) * 20, [1.0, -1.0, 0.0, 0.0]]).astype(np.float32)
    flip, threshold = sign_threshold(scale, bias, k)
    dots = np.arange(-k, k + 1)
    expected = dots[None, :].astype(np.float32) * scale[:, None] + bias[:, None] >= 0
    got = dots[None, :] * flip[:, None] >= threshold[:, None]
    np.testing.assert_array_equal(got, expected)


def test_threshold_from_values_rejects_non_monotone_signs():
    values = np.array([[-1.0, 1.0, -1.0]])
    with pytest.raises(ConfigError, match="channel 0: sign.* is not monotone"):
        threshold_from_values(values)


def test_packed_input_chains_layers(backend):
    """A threshold output fed to the next layer (with width=) equals the float chain."""
    x, weights, w_packed, stride, padding = _case(GEOMETRIES[0], seed=10)
    rng = np.random.default_rng(11)
    threshold = rng.integers(-3, 4, size=5)
    bits = binary_conv2d(x, w_packed, 3, padding=1, threshold=threshold, backend=backend)
    width = x.shape[3]
    second = random_real(rng, (4, 5, 3, 3))
    w2 = pack_bits(second.reshape(4, -1))
    out = binary_conv2d(bits, w2, 3, padding=1, pad_value=-1, width=width, backend=backend)
    middle = unpack_bits(bits, width, axis=-1)       # ±1 float NCHW
    np.testing.assert_array_equal(out, float_conv(middle, second, (1, 1), (1, 1), -1.0))


# (B, C, H, W, Cout, kernel, stride, padding): one-word rows, rows of several words, a padding
# of more than a word, a width that fills whole words, outputs not a multiple of 64 positions,
# widths that divide 64 with items of a few rows (the sign bits of a partial 64-value chunk)
PACKED_GEOMETRIES = [
    (2, 16, 8, 32, 8, (3, 3), 1, 1), (1, 3, 9, 80, 4, (3, 3), 1, 1),
    (2, 3, 7, 130, 5, (3, 5), (2, 1), (1, 70)), (2, 4, 5, 64, 3, (3, 3), 1, 0),
    (3, 5, 6, 100, 7, (3, 3), 2, 1), (1, 3, 5, 16, 4, (3, 3), 1, 1),
    (2, 4, 7, 8, 3, (3, 3), 1, 1),
]


@pytest.mark.parametrize("pad_value", PAD_VALUES)
@pytest.mark.parametrize("geometry", PACKED_GEOMETRIES)
def test_packed_input_equals_the_real_input(backend, geometry, pad_value):
    """x packed along the width (width=W) gives the dots of x itself."""
    x, weights, w_packed, stride, padding = _case(geometry, seed=12)
    packed = pack_bits(x, axis=-1)
    out = binary_conv2d(packed, w_packed, weights.shape[2:], stride=stride, padding=padding,
                        pad_value=pad_value, width=x.shape[3], backend=backend)
    np.testing.assert_array_equal(out, float_conv(x, weights, stride, padding, pad_value))


def test_numba_packed_input_ignores_the_bits_past_the_width():
    x, weights, w_packed, stride, padding = _case(PACKED_GEOMETRIES[2], seed=13)
    packed = pack_bits(x, axis=-1)
    packed[..., -1] |= ~np.uint64(0) << np.uint64(x.shape[3] % 64)
    out = binary_conv2d(packed, w_packed, weights.shape[2:], stride=stride, padding=padding,
                        width=x.shape[3], backend="numba")
    np.testing.assert_array_equal(out, float_conv(x, weights, stride, padding, 0.0))


@pytest.mark.parametrize("geometry", PACKED_GEOMETRIES)
def test_sign_bits_are_the_packed_signs_of_the_float_output(backend, geometry):
    """sign_bits=True: the float output (with a tail) and pack_bits of it, sign(0) = +1."""
    x, weights, w_packed, stride, padding = _case(geometry, seed=14)
    cout = weights.shape[0]
    rng = np.random.default_rng(15)
    scale = rng.normal(size=cout).astype(np.float32)
    bias = rng.choice([0.0, 0.5], size=cout).astype(np.float32)     # exact zeros in the output
    tail = FloatTail(gamma=rng.normal(size=cout).astype(np.float32), clip=(-1.0, 1.0))
    kwargs = dict(stride=stride, padding=padding, scale=scale, bias=bias, tail=tail)
    out, bits = binary_conv2d(x, w_packed, weights.shape[2:], sign_bits=True, backend=backend,
                              **kwargs)
    expected = binary_conv2d(x, w_packed, weights.shape[2:], backend="numpy", **kwargs)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(bits, pack_bits(expected, axis=-1))


@pytest.mark.parametrize("residual_shape, pool, offset", [
    ((3, 8, 16, 16), 2, 4), ((3, 8, 17, 17), 2, 0), ((3, 4, 24, 25), 3, 9),
    ((3, 10, 8, 8), 1, 3), ((3, 16, 8, 8), 1, 0)])
def test_float_tail_pools_and_offsets_the_residual(backend, residual_shape, pool, offset):
    """residual_pool / residual_offset: the residual average-pooled (window values summed in
    row order, then divided) and put at channels offset.., +0.0 in the other channels."""
    x, weights, w_packed, stride, padding, scale, bias, _ = _tail_case(16, ())
    rng = np.random.default_rng(17)
    residual = random_real(rng, residual_shape)
    tail = FloatTail(residual=residual, clip=(-1.0, 1.0), residual_pool=pool,
                     residual_offset=offset)
    out = binary_conv2d(x, w_packed, 3, stride=stride, padding=padding, scale=scale, bias=bias,
                        tail=tail, backend=backend)
    y = float_conv(x, weights, stride, padding, 0.0).astype(np.float32)
    y = y * scale[:, None, None] + bias[:, None, None]
    pooled = sum(residual[:, :, i:i + 8 * pool:pool, j:j + 8 * pool:pool]
                 for i in range(pool) for j in range(pool)) / np.float32(pool * pool)
    shortcut = np.zeros_like(y)
    shortcut[:, offset:offset + residual_shape[1]] = pooled
    np.testing.assert_array_equal(out, np.clip(y + shortcut, -1.0, 1.0))
    assert not np.signbit(out[:, :offset][out[:, :offset] == 0]).any()   # +0.0 added


def test_zero_padding_correction_is_zero_inside_and_the_tap_sums_on_the_border():
    weights = np.ones((1, 2, 3, 3))
    correction = zero_padding_correction(pack_bits(weights.reshape(1, -1)), 2, (3, 3), (4, 4),
                                         (1, 1), (1, 1))
    assert correction.shape == (1, 4, 4)
    assert correction[0, 1, 1] == 0 and correction[0, 0, 1] == 2 * 3 and correction[0, 0, 0] == 10


def test_weights_that_do_not_fit_the_input_channels_are_a_shape_error():
    x = np.ones((1, 4, 5, 5), np.float32)
    w_packed = pack_bits(np.ones((2, 3 * 9)))
    with pytest.raises(ShapeError, match=r"C\*kh\*kw = 4\*3\*3 = 36 bits need 1"):
        binary_conv2d(x, np.zeros((2, 2), np.uint64), 3)
    with pytest.raises(ShapeError, match="w_packed must be .Cout, words. uint64"):
        binary_conv2d(x, w_packed.astype(np.int64), 3)


def test_packed_input_needs_its_width():
    x = pack_bits(np.ones((1, 2, 5, 5)), axis=-1)
    w_packed = pack_bits(np.ones((2, 2 * 9)))
    with pytest.raises(ShapeError, match="pass width=W"):
        binary_conv2d(x, w_packed, 3)
    with pytest.raises(ShapeError, match="width= is only for packed"):
        binary_conv2d(np.ones((1, 2, 5, 5)), w_packed, 3, width=5)


def test_bad_options_are_config_errors():
    x = np.ones((1, 2, 5, 5), np.float32)
    w_packed = pack_bits(np.ones((2, 2 * 9)))
    with pytest.raises(ConfigError, match="pad_value must be 0, \\+1 or -1"):
        binary_conv2d(x, w_packed, 3, pad_value=0.5)
    with pytest.raises(ConfigError, match="either scale/bias .* or threshold/flip"):
        binary_conv2d(x, w_packed, 3, scale=np.ones(2), threshold=np.zeros(2))
    with pytest.raises(ConfigError, match="flip must be \\+1 or -1"):
        binary_conv2d(x, w_packed, 3, threshold=np.zeros(2), flip=np.array([1, 0]))
    with pytest.raises(ConfigError, match="stride must be an int >= 1"):
        binary_conv2d(x, w_packed, 3, stride=0)
    with pytest.raises(ConfigError, match="valid backends"):
        binary_conv2d(x, w_packed, 3, backend="gpu")


def test_shape_errors_name_the_problem():
    x = np.ones((1, 2, 5, 5), np.float32)
    w_packed = pack_bits(np.ones((2, 2 * 9)))
    with pytest.raises(ShapeError, match=r"scale must have one value per output channel, shape "
                                         r"\(2,\); got \(3,\)"):
        binary_conv2d(x, w_packed, 3, scale=np.ones(3))
    with pytest.raises(ShapeError, match="does not fit in the 2x2 input"):
        binary_conv2d(np.ones((1, 2, 2, 2)), w_packed, 3)
    with pytest.raises(ShapeError, match=r"x must be \(B, C, H, W\)"):
        binary_conv2d(np.ones((2, 5, 5)), w_packed, 3)


@pytest.mark.parametrize("kernel, stride, width", [((3, 3), (1, 1), 11), ((3, 3), (2, 2), 11),
                                                   ((2, 5), (1, 3), 11), ((3, 3), (1, 2), 150)])
def test_numba_im2col_pack_matches_the_reference(kernel, stride, width):
    """Word-major patches (W, M) of the fused Numba im2col, including rows wider than a word."""
    from tinybnn.kernels import cpu_conv, reference
    bits = np.random.default_rng(2).random((2, 9, 7, width)) < 0.5
    np.testing.assert_array_equal(cpu_conv.im2col_pack(bits, *kernel, stride).T,
                                  reference.im2col_bits(bits, *kernel, stride))


# The numba kernel has separate paths for 3x3 with one-word rows (two channels per pass, an odd
# last channel), 3x3 with rows wider than 64 bits, and the general piece-by-piece path (more than
# 64 taps, wide or tall kernels, mixed strides): every one against the float reference.
ODD_PATHS = [
    (2, 3, 20, 21, 5, (9, 9), (1, 1), (4, 4)), (2, 2, 12, 130, 3, (9, 8), (2, 3), (1, 2)),
    (1, 4, 9, 70, 5, (3, 3), (1, 1), (1, 1)), (2, 7, 10, 10, 6, (5, 5), (2, 2), (2, 2)),
    (2, 70, 6, 6, 5, (1, 1), (1, 1), (0, 0)), (2, 30, 9, 9, 7, (3, 3), (2, 2), (1, 1)),
    (1, 3, 9, 80, 4, (1, 64), (1, 1), (0, 3)), (2, 15, 8, 11, 5, (3, 3), (1, 2), (1, 1)),
    (2, 1, 6, 6, 3, (3, 3), (1, 1), (1, 1)), (1, 8, 30, 62, 4, (3, 3), (1, 1), (1, 1)),
]


@pytest.mark.parametrize("case", ODD_PATHS)
@pytest.mark.parametrize("pad_value", [0.0, 1.0, -1.0])
def test_numba_kernel_paths_match_float_convolution(case, pad_value):
    b, c, h, w, cout, kernel, stride, padding = case
    rng = np.random.default_rng(1)
    x, wt = random_real(rng, (b, c, h, w)), random_real(rng, (cout, c, *kernel))
    out = binary_conv2d(x, pack_bits(wt.reshape(cout, -1)), kernel, stride=stride,
                        padding=padding, pad_value=pad_value, backend="numba")
    np.testing.assert_array_equal(out, float_conv(x, wt, stride, padding, pad_value))
