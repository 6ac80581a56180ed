"""``binary_conv2d``: convolution of a binarized input with packed ±1 weights.

What it computes (the float reference, for x (B, C, H, W) and weights w (Cout, C, kh, kw))::

    xb  = sign(x)                     with sign(0) = +1
    xp  = xb padded with pad_value    (0, +1 or −1) on each side of H and W
    dot[b, o, ho, wo] = sum over c, i, j of xp[b, c, ho*sh + i, wo*sw + j] * sign(w)[o, c, i, j]

and then one of three outputs:

* ``dot`` itself, int32 (B, Cout, Ho, Wo)                                (no transform given);
* ``dot * scale[o] + bias[o]`` in float32 (a folded batch norm / scaling) (``scale``/``bias``),
  optionally followed by a :class:`FloatTail` (batch norm, residual add, clip: a residual
  unit's float ops, which the numba backend applies in its output stage);
* the sign of the next layer's input as packed bits: bit = ``dot * flip[o] >= threshold[o]``,
  returned as ``pack_bits`` of the ±1 output along the width: uint64 (B, Cout, Ho,
  ceil(Wo/64)). Feed it to the next ``binary_conv2d`` with ``width=Wo``.
  ``sign_threshold(scale, bias, k)`` turns a batch norm followed by sign into (flip, threshold)
  exactly, negative gamma included; ``threshold_from_values`` does it for any per-channel
  monotone function given its values at every dot -k..k (to reproduce a trained model's own
  float expression bit for bit).

How the kernels get it exactly from bits: patches are packed in (c, i, j) order, the order of
``w.reshape(Cout, -1)``. ±1 padding packs directly (bit 1 or 0). Zero padding is neither bit: the
border is packed as +1 (what sign(0) = +1 gives), which adds ``sign(w)[o, c, i, j]`` for every
padded tap; the kernels subtract that exact sum, ``zero_padding_correction`` (Cout, Ho, Wo),
before the output transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinybnn.errors import ConfigError, ShapeError

from .backends import resolve_backend
from .pack import _unpack_bool_last, check_words, n_words, pack_bits, unpack_bits

PAD_VALUES = (0.0, 1.0, -1.0)


@dataclass(frozen=True)
class Epilogue:
    """The output stage of a binary convolution, as every backend receives it.

    kind: "dots" | "affine" | "threshold"; correction: (Cout, Ho, Wo) int32, subtracted from the
    packed dot first; scale, bias: (Cout,) float32 for "affine"; flip, threshold: (Cout,) int32
    for "threshold".
    """

    kind: str
    correction: np.ndarray
    scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    flip: np.ndarray | None = None
    threshold: np.ndarray | None = None


@dataclass(frozen=True)
class FloatTail:
    """Per-channel float32 ops after the float output ``y = dot * scale + bias``, the tail of a
    residual unit (batch norm, shortcut, hardtanh), applied in this order::

        y = ((y - mean[o]) * inv_std[o]) * gamma[o] + beta[o]
        y = y + shortcut
        y = clip(y, low, high)

    each a float32 operation as separate NumPy ops make it, so the values are those of running
    the ops after the convolution. Every part may be None (skipped). Shapes: mean, inv_std, gamma,
    beta (Cout,) float32; clip a (low, high) pair; residual (B, Cr, Hr, Wr) float32, from which
    the shortcut is made: with the defaults (pool 1, offset 0) the residual itself, of the
    output's shape; else a downsampling shortcut, AvgPool2d(residual_pool) followed by zero
    channels: output channel o gets channel o - residual_offset of the residual average-pooled
    over residual_pool x residual_pool windows (Hr // pool = Ho, Wr // pool = Wo; the window's
    values summed in row order, then divided), and +0.0 where that channel does not exist.
    """

    mean: object = None
    inv_std: object = None
    gamma: object = None
    beta: object = None
    residual: object = None
    clip: tuple[float, float] | None = None
    residual_pool: int = 1
    residual_offset: int = 0


def binary_conv2d(x, w_packed, kernel_size, *, stride=1, padding=0, pad_value=0.0,
                  scale=None, bias=None, threshold=None, flip=None, width=None,
                  tail: FloatTail | None = None, sign_bits: bool = False,
                  backend: str | None = None):
    """Binary 2-D convolution (cross-correlation, as PyTorch) on packed bits.

    Args:
        x: (B, C, H, W) real input, binarized inside with sign(0) = +1; or uint64 (B, C, H,
            ceil(W/64)) bits packed along the width (a previous layer's threshold output, or
            ``pack_bits(sign_x, axis=-1)``) together with ``width=W``.
        w_packed: (Cout, ceil(C*kh*kw/64)) uint64, ``pack_bits(w.reshape(Cout, -1))``.
        kernel_size: kh or (kh, kw). stride, padding: int or (for H, for W) pair.
        pad_value: 0, +1 or −1, the value of the padded border of the binarized input.
        scale, bias: (Cout,) -> float32 output ``dot * scale + bias`` (either may be omitted:
            scale 1, bias 0).
        threshold, flip: (Cout,) -> packed-bit output, bit = ``dot * flip >= threshold``;
            flip is +1 or −1 (default +1). A real threshold acts as ceil(threshold).
        width: the true width W when ``x`` is packed.
        tail: a :class:`FloatTail` applied to the float output (scale/bias); the numba backend
            does it in the convolution's output stage, the others after the kernel.
        sign_bits: with the float output, also return its signs packed along the width,
            ``pack_bits(out, axis=-1)`` (sign(0) = +1): the next binary layer's packed input,
            which the numba backend writes in the output stage (no pass over the floats).
        backend: "numpy", "numba", "cupy" or None (see ``available_backends``).

    Returns:
        int32 (B, Cout, Ho, Wo) dots; or float32 (B, Cout, Ho, Wo); or uint64 (B, Cout, Ho,
        ceil(Wo/64)) packed bits; with ``sign_bits`` the pair (float32 output, uint64 packed
        signs). Ho = (H + 2*ph - kh) // sh + 1, likewise Wo. On x's device.

    Raises:
        ShapeError: x not 4-D, weights that do not fit C*kh*kw, per-channel arrays of the wrong
            length, a residual of another shape than the output, a kernel larger than the
            padded input, packed x without width.
        ConfigError: bad pad_value / stride / padding / flip, both transforms at once, a tail
            or sign_bits without the float output, or an unknown or unavailable backend.
    """
    backend = resolve_backend(backend, x, w_packed)
    kh, kw = _pair(kernel_size, "kernel_size", minimum=1)
    stride = _pair(stride, "stride", minimum=1)
    padding = _pair(padding, "padding", minimum=0)
    pad_value = _check_pad_value(pad_value)
    batch, channels, height, in_width = _check_input(x, width)
    cout = _check_weights(w_packed, channels, kh, kw)
    out_h, out_w = conv_output_size((height, in_width), (kh, kw), stride, padding)

    if pad_value == 0.0 and any(padding):
        correction = _cached_correction(w_packed, channels, (kh, kw), (height, in_width), stride,
                                        padding)
    else:
        correction = np.zeros((cout, out_h, out_w), dtype=np.int32)
    epilogue = _epilogue(correction, cout, channels * kh * kw, scale, bias, threshold, flip)
    if tail is not None:
        _check_tail(tail, epilogue, (batch, cout, out_h, out_w))
    if sign_bits and epilogue.kind != "affine":
        raise ConfigError("binary_conv2d: sign_bits= packs the signs of the float output; give "
                          "scale/bias too (or threshold/flip alone for bits only)")

    if backend == "numba":
        if kw > 64:
            raise ConfigError(f"binary_conv2d: the numba backend takes kernels up to 64 wide, "
                              f"got {kw}; use backend='numpy'")
        from . import cpu_conv
        # sign, padding and packing happen in one pass inside (no padded bool map)
        return cpu_conv.binary_conv2d(x, width, padding, pad_value >= 0,
                                      np.ascontiguousarray(w_packed), kh, kw, stride, epilogue,
                                      tail, sign_bits)
    padded = _pad(_input_bits(x, width), padding, pad_bit=pad_value >= 0)
    if backend == "numpy":
        from . import reference
        out = reference.binary_conv2d(padded, np.ascontiguousarray(w_packed), kh, kw, stride,
                                      epilogue)
    else:
        from . import gpu
        out = gpu.binary_conv2d(padded, w_packed, kh, kw, stride, epilogue)
    if tail is not None:
        out = apply_tail(out, tail)
    return (out, pack_bits(out, axis=-1)) if sign_bits else out


def apply_tail(y, tail: FloatTail):
    """The :class:`FloatTail` as array ops, op by op in its order, on y (B, Cout, Ho, Wo)
    float32 (NumPy or CuPy) in place; returns y."""
    xp = _array_module(y)
    for values, operation in ((tail.mean, xp.subtract), (tail.inv_std, xp.multiply),
                              (tail.gamma, xp.multiply), (tail.beta, xp.add)):
        if values is not None:
            operation(y, xp.asarray(values, dtype=np.float32).reshape(1, -1, 1, 1), out=y)
    if tail.residual is not None:
        y += _shortcut(xp, tail, y.shape)
    if tail.clip is not None:
        xp.clip(y, np.float32(tail.clip[0]), np.float32(tail.clip[1]), out=y)
    return y


def _shortcut(xp, tail: FloatTail, out_shape):
    """The shortcut a FloatTail adds, (B, Cout, Ho, Wo) float32: its residual average-pooled
    (window values summed in row order, then divided) and placed at its channel offset."""
    residual = xp.asarray(tail.residual, dtype=np.float32)
    pool, offset = tail.residual_pool, tail.residual_offset
    if pool > 1:
        out_h, out_w = out_shape[2:]
        windows = [residual[:, :, i:i + pool * out_h:pool, j:j + pool * out_w:pool]
                   for i in range(pool) for j in range(pool)]
        residual = windows[0].copy()
        for window in windows[1:]:
            residual += window
        residual /= np.float32(pool * pool)
    if offset == 0 and residual.shape[1] == out_shape[1]:
        return residual
    padded = xp.zeros(out_shape, np.float32)
    padded[:, offset:offset + residual.shape[1]] = residual
    return padded


def conv_output_size(size, kernel_size, stride, padding) -> tuple[int, int]:
    """(Ho, Wo) = ((H + 2*ph - kh) // sh + 1, (W + 2*pw - kw) // sw + 1); ShapeError if < 1."""
    out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel_size, stride, padding))
    if min(out) < 1:
        raise ShapeError(f"binary_conv2d: a {kernel_size[0]}x{kernel_size[1]} kernel does not fit "
                         f"in the {size[0]}x{size[1]} input padded by {padding}; use a larger "
                         f"input or more padding")
    return out


def zero_padding_correction(w_packed, channels: int, kernel_size, input_size, stride,
                            padding) -> np.ndarray:
    """What packing a zero border as +1 adds to each dot: the term the kernels subtract.

    correction[o, ho, wo] = sum over the taps (i, j) of output (ho, wo) that fall in the border
    of sum over c of sign(w)[o, c, i, j].

    Args:
        w_packed: (Cout, ceil(C*kh*kw/64)) uint64 (NumPy). channels: C.
        kernel_size, input_size (H, W), stride, padding: pairs.

    Returns:
        (Cout, Ho, Wo) int32 (zeros away from the border).
    """
    (kh, kw), (height, width) = kernel_size, input_size
    (sh, sw), (ph, pw) = stride, padding
    out_h, out_w = conv_output_size(input_size, kernel_size, stride, padding)
    signs = unpack_bits(w_packed, channels * kh * kw).reshape(-1, channels, kh, kw)
    tap_sums = signs.sum(axis=1, dtype=np.int64)                           # (Cout, kh, kw)
    row = np.arange(out_h)[:, None] * sh + np.arange(kh)[None, :] - ph    # (Ho, kh) input row
    col = np.arange(out_w)[:, None] * sw + np.arange(kw)[None, :] - pw    # (Wo, kw) input col
    row_out = (row < 0) | (row >= height)
    col_out = (col < 0) | (col >= width)
    border = row_out[:, None, :, None] | col_out[None, :, None, :]        # (Ho, Wo, kh, kw)
    return np.einsum("hwij,oij->ohw", border.astype(np.int64), tap_sums).astype(np.int32)


def sign_threshold(scale, bias, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``sign(dot * scale + bias)`` (float32, sign(0) = +1) into an integer threshold.

    Args:
        scale, bias: (Cout,) e.g. a batch norm folded as scale = gamma / sqrt(var + eps),
            bias = beta - mean * scale. Any sign of scale, including 0.
        k: the reduction length C*kh*kw (dots lie in [-k, k]).

    Returns:
        (flip, threshold), (Cout,) int32 each, such that for every integer dot in [-k, k]
        ``(dot * flip >= threshold) == (float32(dot) * scale + bias >= 0)`` with float32
        arithmetic exactly as the "affine" output computes it.
    """
    scale = np.asarray(scale, dtype=np.float32).reshape(-1)
    bias = np.asarray(bias, dtype=np.float32).reshape(-1)
    if scale.shape != bias.shape:
        raise ShapeError(f"sign_threshold: scale has {scale.size} channels but bias has "
                         f"{bias.size}; give one value per output channel in each")
    dots = np.arange(-k, k + 1, dtype=np.float32)
    return threshold_from_values(dots[None, :] * scale[:, None] + bias[:, None])


def threshold_from_values(values) -> tuple[np.ndarray, np.ndarray]:
    """(flip, threshold) reproducing ``values >= 0`` for every dot in [-k, k].

    Args:
        values: (Cout, 2k+1), the pre-sign output of each channel at dot = -k, ..., k (compute
            it with the exact float expression the trained model uses). ``values >= 0`` must be
            monotone in dot for each channel, as it is for any affine or batch-norm map.

    Returns:
        (flip, threshold), (Cout,) int32: +1 and the smallest dot giving bit 1 for a rising
        channel, −1 and minus the largest such dot for a falling one; threshold k+1 means
        "never 1", flip +1 with threshold -k "always 1".
    """
    positive = np.asarray(values) >= 0
    if positive.ndim != 2 or positive.shape[1] % 2 != 1:
        raise ShapeError(f"threshold_from_values needs (channels, 2k+1) values at dot = -k..k, "
                         f"got shape {positive.shape}")
    k = positive.shape[1] // 2
    rising = np.all(positive[:, 1:] >= positive[:, :-1], axis=1)
    falling = np.all(positive[:, 1:] <= positive[:, :-1], axis=1)
    if not np.all(rising | falling):
        channel = int(np.flatnonzero(~(rising | falling))[0])
        raise ConfigError(f"channel {channel}: sign(value) is not monotone in the dot product, so "
                          f"no threshold reproduces it (NaN in the batch norm?)")
    count = positive.sum(axis=1)                   # how many dots give bit 1
    first_one = np.where(count > 0, np.argmax(positive, axis=1) - k, k + 1)
    last_one = np.where(count > 0, k - np.argmax(positive[:, ::-1], axis=1), -(k + 1))
    flip = np.where(rising, 1, -1).astype(np.int32)
    threshold = np.where(rising, first_one, -last_one).astype(np.int32)
    return flip, threshold


# --------------------------------------------------------------------------------------------
# input checks and preparation
# --------------------------------------------------------------------------------------------


def _check_input(x, width) -> tuple[int, int, int, int]:
    """(B, C, H, W) of the input; ShapeError unless x is a 4-D real array, or uint64 packed
    along the width together with its true ``width``."""
    if getattr(x, "ndim", None) != 4:
        raise ShapeError(f"binary_conv2d: x must be (B, C, H, W), got shape "
                         f"{getattr(x, 'shape', type(x).__name__)}; add the missing axes "
                         f"(e.g. x[None] for one image)")
    if x.dtype == np.uint64:
        if width is None:
            raise ShapeError("binary_conv2d: x is uint64, i.e. bits packed along the width; pass "
                             "width=W, the true width of the rows")
        check_words(x.shape[-1], width, "binary_conv2d: packed x")
        return tuple(x.shape[:3]) + (int(width),)
    if width is not None:
        raise ShapeError(f"binary_conv2d: width= is only for packed (uint64) input, but x has "
                         f"dtype {x.dtype}; drop width=")
    if x.dtype.kind not in "biuf":
        raise ShapeError(f"binary_conv2d: x must be real, got dtype {x.dtype}")
    return tuple(x.shape)


def _input_bits(x, width):
    """The binarized input as a (B, C, H, W) bool array on x's device (x already checked)."""
    if x.dtype == np.uint64:
        if hasattr(x, "get"):                                 # CuPy: unpack on the device
            from . import gpu
            return gpu.unpack_bits(x, width, x.ndim - 1) >= 0
        return _unpack_bool_last(x, width)
    return x if x.dtype == np.bool_ else x >= 0


#: zero_padding_correction results of recent calls, keyed by (id(w_packed), geometry); each
#: entry keeps a copy of the weights it was computed from and is used only while they are equal
_CORRECTIONS: dict = {}
_CORRECTIONS_MAX = 256


def _cached_correction(w_packed, channels, kernel_size, input_size, stride, padding):
    """``zero_padding_correction`` for NumPy weights, remembered per weights and geometry.

    A model calls each layer with the same weights and shapes every time, so the correction is
    computed once per layer. The cached copy of the weights is compared (a few hundred words)
    before use, so weights changed in place or a reused id() never see a stale correction.
    CuPy weights are fetched and computed each call.
    """
    if hasattr(w_packed, "get"):
        return zero_padding_correction(w_packed.get(), channels, kernel_size, input_size,
                                       stride, padding)
    key = (id(w_packed), w_packed.shape, channels, kernel_size, input_size, stride, padding)
    entry = _CORRECTIONS.get(key)
    if entry is not None and np.array_equal(entry[0], w_packed):
        return entry[1]
    correction = zero_padding_correction(w_packed, channels, kernel_size, input_size, stride,
                                         padding)
    if len(_CORRECTIONS) >= _CORRECTIONS_MAX:
        _CORRECTIONS.clear()
    _CORRECTIONS[key] = (np.array(w_packed, copy=True), correction)
    return correction


def _check_weights(w_packed, channels: int, kh: int, kw: int) -> int:
    """The number of output channels; ShapeError unless w_packed fits C*kh*kw bits per row."""
    dtype = getattr(w_packed, "dtype", None)
    if dtype != np.uint64 or w_packed.ndim != 2:
        raise ShapeError(f"binary_conv2d: w_packed must be (Cout, words) uint64, "
                         f"pack_bits(w.reshape(Cout, -1)); got "
                         f"{dtype} {getattr(w_packed, 'shape', '')}")
    k = channels * kh * kw
    if w_packed.shape[1] != n_words(k):
        raise ShapeError(f"binary_conv2d: w_packed has {w_packed.shape[1]} words per output "
                         f"channel but C*kh*kw = {channels}*{kh}*{kw} = {k} bits need "
                         f"{n_words(k)}; "
                         f"check the input channels and kernel_size")
    return w_packed.shape[0]


def _epilogue(correction, cout, k, scale, bias, threshold, flip) -> Epilogue:
    affine = scale is not None or bias is not None
    thresholded = threshold is not None or flip is not None
    if affine and thresholded:
        raise ConfigError("binary_conv2d: give either scale/bias (float output) or "
                          "threshold/flip (bit output), not both")
    if affine:
        scale = np.ones(cout, np.float32) if scale is None else _per_channel(scale, cout, "scale")
        bias = np.zeros(cout, np.float32) if bias is None else _per_channel(bias, cout, "bias")
        return Epilogue("affine", correction, scale=scale.astype(np.float32),
                        bias=bias.astype(np.float32))
    if thresholded:
        if threshold is None:
            raise ConfigError("binary_conv2d: flip= needs threshold= as well")
        threshold = _per_channel(threshold, cout, "threshold").astype(np.float64)
        if np.isnan(threshold).any():
            raise ConfigError("binary_conv2d: threshold contains NaN")
        # dot is an integer in [-k, k], so dot >= t  <=>  dot >= ceil(t), clipped to k + 1
        threshold = np.clip(np.ceil(threshold), -(k + 1), k + 1).astype(np.int32)
        flip = np.ones(cout, np.int32) if flip is None else _per_channel(flip, cout, "flip")
        if not np.all((flip == 1) | (flip == -1)):
            raise ConfigError(f"binary_conv2d: flip must be +1 or -1 per channel, got "
                              f"{np.unique(flip)}")
        return Epilogue("threshold", correction, flip=flip.astype(np.int32),
                        threshold=threshold)
    return Epilogue("dots", correction)


def _check_tail(tail, epilogue: Epilogue, out_shape) -> None:
    """ConfigError unless the output is the float one; ShapeError for parts of the wrong shape."""
    if not isinstance(tail, FloatTail):
        raise ConfigError(f"binary_conv2d: tail must be a FloatTail, got {type(tail).__name__}")
    if epilogue.kind != "affine":
        raise ConfigError("binary_conv2d: tail= acts on the float output; give scale/bias too "
                          "(scale=1, bias=0 for the bare dots)")
    for name in ("mean", "inv_std", "gamma", "beta"):
        if getattr(tail, name) is not None:
            _per_channel(getattr(tail, name), out_shape[1], f"tail.{name}")
    if tail.residual is not None:
        _check_residual(tail, out_shape)


def _check_residual(tail: FloatTail, out_shape) -> None:
    """ShapeError / ConfigError unless the residual makes a shortcut of the output's shape."""
    pool, offset = tail.residual_pool, tail.residual_offset
    if not (isinstance(pool, (int, np.integer)) and pool >= 1
            and isinstance(offset, (int, np.integer)) and offset >= 0):
        raise ConfigError(f"binary_conv2d: tail.residual_pool must be an int >= 1 and "
                          f"tail.residual_offset an int >= 0, got {pool!r}, {offset!r}")
    shape = tuple(getattr(tail.residual, "shape", ()))
    batch, cout, out_h, out_w = out_shape
    if not (len(shape) == 4 and shape[0] == batch and offset + shape[1] <= cout
            and shape[2] // pool == out_h and shape[3] // pool == out_w):
        raise ShapeError(f"binary_conv2d: tail.residual must have the output's shape "
                         f"{tuple(out_shape)}, or (B, Cr, Hr, Wr) with Hr // p = Ho, "
                         f"Wr // p = Wo and f + Cr <= Cout for residual_pool p and "
                         f"residual_offset f; got {shape or None} with p = {pool}, f = {offset}")


def _per_channel(values, cout: int, name: str) -> np.ndarray:
    values = values.get() if hasattr(values, "get") else np.asarray(values)
    if values.shape != (cout,):
        raise ShapeError(f"binary_conv2d: {name} must have one value per output channel, shape "
                         f"({cout},); got {values.shape}")
    return values


def _pad(bits, padding, pad_bit: bool):
    """bits (B, C, H, W) with ph rows / pw columns of ``pad_bit`` on each side (x's device)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return bits
    xp = _array_module(bits)
    batch, channels, height, width = bits.shape
    padded = xp.full((batch, channels, height + 2 * ph, width + 2 * pw), pad_bit, dtype=bool)
    padded[:, :, ph:ph + height, pw:pw + width] = bits
    return padded


def _array_module(array):
    if hasattr(array, "get"):
        import cupy
        return cupy
    return np


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum
                                 for v in pair):
        raise ConfigError(f"binary_conv2d: {name} must be an int >= {minimum} or a pair of "
                          f"them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_pad_value(pad_value) -> float:
    try:
        value = float(pad_value)
    except (TypeError, ValueError):
        value = None
    if value not in PAD_VALUES or isinstance(pad_value, bool):
        raise ConfigError(f"binary_conv2d: pad_value must be 0, +1 or -1 (the value of the "
                          f"binarized input's border), got {pad_value!r}")
    return value
