"""Export: a trained binary network becomes a small, bit-packed inference model.

Training keeps a real-valued *latent* weight behind every binary layer and binarizes it (and the
activations) in each forward pass, in float32 ±1 arithmetic. For inference none of that machinery
is needed: the weights are fixed, so their signs can be packed 64 to a word once and for all, and
the layer becomes an XNOR-popcount kernel (:mod:`tinybnn.kernels`)::

    model = resnet20(variant="w1a1")            # ... trained ...
    inference = export(model)                   # an InferenceModel: a list of ops + arrays
    logits = inference.predict(images)          # float32 (N, classes), same as model.eval()(x)
    inference.save("resnet20.npz")              # packed weights + JSON, no pickle
    InferenceModel.load("resnet20.npz").predict(images, backend="numpy")

What ``export`` does
--------------------
1. It walks the model's modules (``Sequential`` and the block classes of :mod:`tinybnn.models`,
   in the order their ``forward`` calls them) and writes one *op* per layer. Unknown module types
   are refused with a ConfigError that names them: the export never guesses a ``forward``.
2. A binary layer (``BinaryConv2d``/``BinaryLinear`` with an input quantizer) becomes a
   ``binary_conv2d``/``binary_linear`` op holding ``sign(Q(W))`` as packed uint64 words (1 bit per
   weight) and ``|Q(W)|``, which must be one float per output channel (XNOR's mean|W|, ReCU's α,
   ...). Its output transform is ``dot * scale + bias`` with scale = that magnitude × the layer's
   own scale (``mean_abs``/``learnable``) × the input quantizer's scale (elastic α).
3. Batch norm and the other real-valued parts (shortcuts, pooling, hardtanh, PReLU/RPReLU,
   LearnableBias, the first and last layers) stay float32 ops run as plain array code.
4. **Sign thresholds.** Where the real-valued ops between two binary layers are per-channel and
   end in the next layer's sign (binary layer -> [max-pool] -> BN -> hardtanh -> binary layer),
   their only effect is one bit per value, a monotone function of the integer dot product. The
   export evaluates that chain at every possible dot -k..k *with the same float32 ops the model
   uses* and reads off an integer threshold per channel (``threshold_from_values``): the kernel
   then emits packed bits directly, and the sign decisions are bit-identical to the model's.
5. Where a batch norm's output stays real (it is added to a shortcut), ``exact=True`` (default)
   keeps it as a ``batch_norm`` op computing ``((x - mean) * inv_std) * gamma + beta`` exactly as
   the training code does, so the whole exported network gives the same float32 values as
   ``model.eval()``. ``exact=False`` folds it into the kernel's ``dot * scale + bias`` instead:
   one pass less over the activations, outputs equal up to float32 rounding (which a later sign
   can amplify into a flipped bit now and then).
6. ``predict`` runs the ops one after the other; on the "numba" backend each batch_norm -> add
   -> hardtanh chain (a residual unit's float tail) runs inside the output stage of the binary
   convolution before it (``kernels.conv.FloatTail``), with the unit's avg_pool2d ->
   pad_channels shortcut if it has one, or as one compiled parallel pass after any other op,
   and any other avg_pool2d -> pad_channels shortcut as one pass: the same float32 operations
   in the same order, so the values stay the same. A residual unit whose output feeds the next
   binary convolution also writes the output's signs as packed bits, which that convolution
   reads instead of binarizing and packing the floats again.

Input quantizers that export are those whose *eval* forward is ``s · sign((x + b) / a)``
(:func:`input_binarizer`); weight quantizers those whose output is ``±m`` per output channel.

The op set
----------
Every op reads values by name and writes one new value (a float32/int32/bool array, or
:class:`PackedBits`). Shapes: N batch, C/O channels, H×W spatial, K features.

====================  =========================================================================
op                    what it computes
====================  =========================================================================
``binary_conv2d``     sign of (x + shift)/divisor (or bits) ⊛ packed ±1 weights, then
                      ``mode="float"``: dot*scale + bias  (N, O, Ho, Wo) float32;
                      ``"bits"``: dot*flip >= threshold, packed along W (:class:`PackedBits`);
                      ``"dots"``: the int32 dots (before a max-pool that precedes a threshold)
``binary_linear``     the same for (N, K) -> (N, O) with ``xnor_gemm`` (bits: bool (N, O))
``binary_weight_conv2d``  W1A32: a real input convolved with ±m weights unpacked from bits
``binary_weight_linear``  W1A32 fully connected layer
``threshold``         int32 dots (N, C, ...) -> bool bits: dot*flip[c] >= threshold[c]
``conv2d``            real convolution (weight (O, C, kh, kw), optional bias)
``linear``            x @ weight.T (+ bias)
``batch_norm``        ((x - mean) * inv_std) * weight + bias per channel (axis 1)
``relu`` ``hardtanh`` ``prelu`` ``rprelu``   activations (per-channel slopes on axis 1)
``shift`` ``scale``   x + b, x * s per channel (LearnableBias, Scale)
``max_pool2d`` ``avg_pool2d`` ``global_avg_pool`` ``adaptive_avg_pool2d``   pooling
``subsample``         x[:, :, ::s, ::s];  ``pad_channels``: zero channels before/after
``flatten``           (N, ...) -> (N, -1) (bits are unpacked first)
``add``               a + b (a residual connection)
====================  =========================================================================

File format (``save``/``load``)
-------------------------------
One compressed ``.npz`` archive (``np.load(path, allow_pickle=False)`` opens it; compression
shrinks the JSON and the float arrays a little, the packed bits not at all) holding every array
under its key (``"layer1.0.unit1.conv/weight"``; packed weights are uint64) and ``__meta__``, the
UTF-8 bytes of a JSON object: ``{"format": "tinybnn-inference", "version": 1, "output": ...,
"ops": [...], "arrays": {key: {"dtype", "shape"}}, "sha256": ..., "input_shape": ..., ...}``.
The SHA-256 covers every array's name, dtype, shape and bytes. The file is written to a
temporary file and renamed into place; a missing, truncated, corrupt or inconsistent file
raises CheckpointError.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad
from ..backend import to_numpy
from ..errors import CheckpointError, ConfigError, ShapeError
from ..functional.conv import conv2d as _functional_conv2d
from ..kernels import (binary_conv2d as _kernel_conv2d, pack_bits, threshold_from_values,
                       unpack_bits, xnor_gemm)
from ..kernels.backends import resolve_backend
from ..kernels.conv import FloatTail, conv_output_size
from ..models.cnn import SmallCNN
from ..models.common import GlobalAvgPool, Subsample, ZeroPadChannels
from ..models.resnet import BasicBlock, BinaryBasicBlock, BinaryConvUnit, ResNet
from ..models.vgg import VGGSmall
from ..nn.binary import BinaryConv2d, BinaryLinear, output_scale
from ..quant.activation import (EDE, ApproxSignQuantizer, Elastic, Heaviside, IdentitySte,
                                RecuAct, RSign, SwishSignQuantizer)
from ..quant.sign import SteSign
from ..quant.weight import Progressive
from ..surge import SurgeLayer

FORMAT = "tinybnn-inference"
VERSION = 1
META_KEY = "__meta__"
INPUT = "input"


# =============================================================================================
# Values and ops
# =============================================================================================


class PackedBits(NamedTuple):
    """Binary activations packed along the width, as the convolution kernel emits them.

    words: uint64 (N, C, H, ceil(W/64)), bit 1 = +1 (``pack_bits(x, axis=-1)``); width: W.
    """

    words: object
    width: int


@dataclass
class Op:
    """One step of an inference model.

    Attributes:
        kind: the op's name (a key of :data:`OPS`), e.g. ``"binary_conv2d"``.
        inputs: names of the values it reads (``"input"`` is the model's input).
        output: the name of the value it writes.
        attrs: JSON-able settings (stride, padding, mode, ...).
        arrays: role -> key in the model's array table, e.g. ``{"weight": "fc/weight"}``.
        source: the dotted name of the module it was exported from (for reading and errors).
    """

    kind: str
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    arrays: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def to_json(self) -> dict:
        return {"kind": self.kind, "inputs": list(self.inputs), "output": self.output,
                "attrs": self.attrs, "arrays": self.arrays, "source": self.source}

    @classmethod
    def from_json(cls, record: dict) -> "Op":
        return cls(kind=str(record["kind"]), inputs=[str(v) for v in record["inputs"]],
                   output=str(record["output"]), attrs=dict(record.get("attrs") or {}),
                   arrays={str(k): str(v) for k, v in (record.get("arrays") or {}).items()},
                   source=str(record.get("source", "")))


class _Run:
    """What an op needs while it runs: the array module, the kernel backend, the model's arrays on
    that device, and a cache for arrays derived from them (unpacked W1A32 weights, ones)."""

    def __init__(self, xp, backend: str, arrays: dict, cache: dict):
        self.xp, self.backend, self.arrays, self.cache = xp, backend, arrays, cache

    def array(self, op: Op, role: str):
        """The array of ``op`` in ``role``, or None when the op has none."""
        key = op.arrays.get(role)
        return None if key is None else self.arrays[key]

    def derived(self, op: Op, role: str, make: Callable):
        """``make()`` computed once per op and device, then reused."""
        key = (op.output, role)
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def _channel_view(array, ndim: int, axis: int = 1):
    """A per-channel vector (C,) reshaped to broadcast along ``axis`` of an ndim-array; a single
    value (shape (1,)) broadcasts everywhere as it is."""
    if array.size == 1:
        return array.reshape((1,) * ndim)
    shape = [1] * ndim
    shape[axis] = array.size
    return array.reshape(shape)


def _as_float(rt: _Run, x):
    """Real-valued ops take float32; bits (which only reach them through a flatten) become ±1."""
    if isinstance(x, PackedBits):
        return unpack_bits(x.words, x.width, axis=-1)
    if x.dtype == np.bool_:
        return rt.xp.where(x, np.float32(1), np.float32(-1))
    return x


def _pad_hw(xp, x, ph: int, pw: int, value):
    """x (N, C, H, W) with ph rows and pw columns of ``value`` on each side."""
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _window(i: int, j: int, sh: int, sw: int, oh: int, ow: int):
    """Offset (i, j) of every pooling window: an (N, C, OH, OW) strided slice."""
    return (slice(None), slice(None), slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw))


# ---------------------------------------------------------------------------------------------
# Real-valued ops. Each repeats the float32 operations of the training code in the same order
# (see the functional module it names), so that the exported values are bit-identical.
# ---------------------------------------------------------------------------------------------


def _real_conv2d(x, weight, bias, stride, padding, pad_value=0.0):
    """The training code's own im2col + BLAS convolution (``functional.conv.conv2d``) on arrays:
    the same code gives the same float32 values, which matters because the binary layer after the
    stem takes their signs."""
    with no_grad():
        y = _functional_conv2d(Tensor(x), Tensor(weight),
                               None if bias is None else Tensor(bias),
                               stride=tuple(stride), padding=tuple(padding),
                               pad_value=float(pad_value))
    return y.data


def op_conv2d(rt, op, x):
    """Real convolution. x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, Ho, Wo)."""
    return _real_conv2d(_as_float(rt, x), rt.array(op, "weight"), rt.array(op, "bias"),
                        op.attrs["stride"], op.attrs["padding"])


def op_linear(rt, op, x):
    """x (N, K) @ weight (O, K).T + bias (O,) -> (N, O)  (``functional.linear``)."""
    y = rt.xp.ascontiguousarray(_as_float(rt, x)) @ rt.array(op, "weight").T
    bias = rt.array(op, "bias")
    if bias is not None:
        y += bias
    return y


def op_batch_norm(rt, op, x):
    """Batch norm with fixed statistics, per channel (axis 1) of (N, C, ...):
    ((x - mean) * inv_std) * weight + bias, inv_std = 1/sqrt(running_var + eps) (float32), in the
    order of ``functional.norm.BatchNorm`` in eval mode."""
    ndim = x.ndim
    y = x - _channel_view(rt.array(op, "mean"), ndim)
    y *= _channel_view(rt.array(op, "inv_std"), ndim)
    weight, bias = rt.array(op, "weight"), rt.array(op, "bias")
    if weight is not None:
        y *= _channel_view(weight, ndim)
    if bias is not None:
        y += _channel_view(bias, ndim)
    return y


def op_relu(rt, op, x):
    """max(x, 0) computed as x * [x > 0] (``functional.activation.ReLU``)."""
    return x * (x > 0)


def op_hardtanh(rt, op, x):
    """clip(x, min_val, max_val)."""
    return rt.xp.clip(x, op.attrs["min_val"], op.attrs["max_val"])


def _prelu(xp, x, slope):
    return xp.where(x > 0, x, _channel_view(slope, x.ndim) * x)


def op_prelu(rt, op, x):
    """x where x > 0, slope[c] * x elsewhere (one shared slope or one per channel)."""
    return _prelu(rt.xp, x, rt.array(op, "slope"))


def op_rprelu(rt, op, x):
    """ReActNet's RPReLU: prelu(x - gamma, beta) + zeta, per channel."""
    shifted = x - _channel_view(rt.array(op, "gamma"), x.ndim)
    return _prelu(rt.xp, shifted, rt.array(op, "beta")) + _channel_view(rt.array(op, "zeta"),
                                                                           x.ndim)


def op_shift(rt, op, x):
    """x + bias[c] (LearnableBias)."""
    return x + _channel_view(rt.array(op, "bias"), x.ndim)


def op_scale(rt, op, x):
    """x * weight[c] (Scale)."""
    return x * _channel_view(rt.array(op, "weight"), x.ndim)


def op_max_pool2d(rt, op, x):
    """Max over kh×kw windows (float values or int32 dots); the border never wins.
    (N, C, H, W) -> (N, C, OH, OW)."""
    xp = rt.xp
    (kh, kw), (sh, sw), (ph, pw) = op.attrs["kernel_size"], op.attrs["stride"], op.attrs["padding"]
    floor = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    xpad = _pad_hw(xp, x, ph, pw, floor)
    oh, ow = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1
    y = xpad[_window(0, 0, sh, sw, oh, ow)].copy()
    for k in range(1, kh * kw):
        xp.maximum(y, xpad[_window(k // kw, k % kw, sh, sw, oh, ow)], out=y)
    return y


def op_avg_pool2d(rt, op, x):
    """Mean over kh×kw windows, zero border (``functional.pool.AvgPool2d``, same summation
    order). (N, C, H, W) -> (N, C, OH, OW)."""
    xp = rt.xp
    (kh, kw), (sh, sw), (ph, pw) = op.attrs["kernel_size"], op.attrs["stride"], op.attrs["padding"]
    xpad = _pad_hw(xp, x, ph, pw, 0.0)
    oh, ow = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1
    y = xpad[_window(0, 0, sh, sw, oh, ow)].copy()
    for k in range(1, kh * kw):
        y += xpad[_window(k // kw, k % kw, sh, sw, oh, ow)]
    if op.attrs["count_include_pad"] or (ph == 0 and pw == 0):
        divisor = float(kh * kw)
    else:
        ones = _pad_hw(xp, xp.ones((1, 1) + x.shape[2:], dtype=x.dtype), ph, pw, 0.0)
        divisor = sum(ones[_window(k // kw, k % kw, sh, sw, oh, ow)] for k in range(kh * kw))
    y /= divisor
    return y


def op_global_avg_pool(rt, op, x):
    """(N, C, H, W) -> (N, C): the mean over H and W."""
    return x.mean(axis=(2, 3))


def op_adaptive_avg_pool2d(rt, op, x):
    """Average pooling to (oh, ow) with PyTorch's bins. (N, C, H, W) -> (N, C, oh, ow)."""
    oh, ow = op.attrs["output_size"]
    n, c, h, w = x.shape
    rows = [((i * h) // oh, -(-((i + 1) * h) // oh)) for i in range(oh)]
    cols = [((j * w) // ow, -(-((j + 1) * w) // ow)) for j in range(ow)]
    y = rt.xp.empty((n, c, oh, ow), dtype=x.dtype)
    for a, (h0, h1) in enumerate(rows):
        for b, (w0, w1) in enumerate(cols):
            y[:, :, a, b] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def op_flatten(rt, op, x):
    """(N, d1, d2, ...) -> (N, d1·d2·...) from ``start_dim``; packed bits are unpacked to bool."""
    if isinstance(x, PackedBits):
        x = unpack_bits(x.words, x.width, axis=-1) >= 0
    start = op.attrs["start_dim"]
    return x.reshape(*x.shape[:start], -1)


def op_subsample(rt, op, x):
    """Every stride-th pixel: (N, C, H, W) -> (N, C, ceil(H/s), ceil(W/s))."""
    s = op.attrs["stride"]
    return x[:, :, ::s, ::s]


def op_pad_channels(rt, op, x):
    """Zero channels before and after: (N, C, H, W) -> (N, before + C + after, H, W)."""
    before, after = op.attrs["before"], op.attrs["after"]
    n, c, *spatial = x.shape
    y = rt.xp.zeros((n, before + c + after, *spatial), dtype=x.dtype)
    y[:, before:before + c] = x
    return y


def op_add(rt, op, a, b):
    """a + b (a residual connection)."""
    return a + b


def op_threshold(rt, op, dots):
    """int32 dots (N, C, ...) -> bool bits: dot * flip[c] >= threshold[c]."""
    flip = _channel_view(rt.array(op, "flip"), dots.ndim)
    threshold = _channel_view(rt.array(op, "threshold"), dots.ndim)
    return dots * flip >= threshold


# ---------------------------------------------------------------------------------------------
# Binary ops
# ---------------------------------------------------------------------------------------------


def _binarized(rt, op, x, axis: int):
    """The binary layer's input as the kernels take it: bits (bool or PackedBits) pass through;
    a real x becomes the bool array ``(x + shift) / divisor >= 0`` when the input quantizer has a
    shift or divisor (RSign, elastic), else stays real (the kernels take ``x >= 0`` themselves)."""
    if isinstance(x, PackedBits) or x.dtype == np.bool_:
        return x
    shift, divisor = rt.array(op, "input_shift"), rt.array(op, "input_divisor")
    if shift is None and divisor is None:
        return x
    value = x if shift is None else x + _channel_view(shift, x.ndim, axis)
    if divisor is not None:
        value = value / divisor.reshape(())
    return value >= 0


def _float_epilogue(xp, dots, scale, bias, axis: int = 1):
    """float32(dot) * scale + bias per channel, in that order (the convolution kernel's affine
    output computes the same two roundings). The result is C-contiguous whatever the order of the
    dots (the Numba GEMM writes column-major): a later matmul must see the memory layout it sees
    in the model, or BLAS may sum in another order."""
    y = xp.ascontiguousarray(dots, dtype=np.float32)
    if scale is not None:
        y *= _channel_view(scale, y.ndim, axis)
    if bias is not None:
        y += _channel_view(bias, y.ndim, axis)
    return y


def _binary_conv_shape(op, x) -> tuple[int, int, int, int]:
    """(N, O, Ho, Wo), the output shape of binary_conv2d op on x (an array or PackedBits)."""
    a = op.attrs
    array, width = (x.words, x.width) if isinstance(x, PackedBits) else (x, x.shape[3])
    out_h, out_w = conv_output_size((array.shape[2], width), a["kernel_size"], a["stride"],
                                    a["padding"])
    return array.shape[0], a["out_channels"], out_h, out_w


def op_binary_conv2d(rt, op, x, tail=None, sign_bits=False):
    """Binary convolution on packed bits. x (N, C, H, W) real, bool, or PackedBits ->
    mode "float": (N, O, Ho, Wo) float32 dot*scale + bias, then ``tail`` (a kernels FloatTail)
    if given, and with ``sign_bits`` the pair (that, its signs as PackedBits); "bits":
    PackedBits (dot*flip >= threshold); "dots": int32 (N, O, Ho, Wo)."""
    a = op.attrs
    binarized = x = _binarized(rt, op, x, axis=1)
    kwargs = dict(stride=tuple(a["stride"]), padding=tuple(a["padding"]),
                  pad_value=a["pad_value"], backend=rt.backend)
    if isinstance(x, PackedBits):
        x, kwargs["width"] = x.words, x.width
    weight, kernel = rt.array(op, "weight"), tuple(a["kernel_size"])
    if a["mode"] == "float":
        out_channels = a["out_channels"]
        scale = rt.array(op, "scale")
        if scale is None:
            scale = rt.derived(op, "ones", lambda: rt.xp.ones(out_channels, np.float32))
        bias = rt.array(op, "bias")
        if bias is None:
            bias = rt.derived(op, "zeros", lambda: rt.xp.zeros(out_channels, np.float32))
        out = _kernel_conv2d(x, weight, kernel, scale=scale, bias=bias, tail=tail,
                             sign_bits=sign_bits, **kwargs)
        return (out[0], PackedBits(out[1], out[0].shape[3])) if sign_bits else out
    if a["mode"] == "bits":
        words = _kernel_conv2d(x, weight, kernel, threshold=rt.array(op, "threshold"),
                               flip=rt.array(op, "flip"), **kwargs)
        return PackedBits(words, _binary_conv_shape(op, binarized)[3])
    return _kernel_conv2d(x, weight, kernel, **kwargs)


def op_binary_linear(rt, op, x):
    """Binary fully connected layer with ``xnor_gemm``. x (N, K) real or bool -> mode "float":
    (N, O) float32; "bits": bool (N, O); "dots": int32 (N, O)."""
    x = _binarized(rt, op, x, axis=-1)
    dots = xnor_gemm(pack_bits(x, axis=-1), rt.array(op, "weight"), op.attrs["in_features"],
                     backend=rt.backend)
    mode = op.attrs["mode"]
    if mode == "float":
        return _float_epilogue(rt.xp, dots, rt.array(op, "scale"), rt.array(op, "bias"), axis=-1)
    if mode == "bits":
        return dots * rt.array(op, "flip") >= rt.array(op, "threshold")
    return dots


def _unpacked_weight(rt, op, shape):
    """The ±m float32 weight of a W1A32 op, rebuilt once from its bits and magnitudes: exactly
    the values Q(W) the model computed with."""
    def make():
        k = int(np.prod(shape[1:]))
        w = unpack_bits(rt.array(op, "weight"), k, axis=-1)
        magnitude = rt.array(op, "magnitude")
        if magnitude is not None:
            w = w * magnitude[:, None]
        return rt.xp.ascontiguousarray(w.reshape(shape))
    return rt.derived(op, "float_weight", make)


def op_binary_weight_conv2d(rt, op, x):
    """W1A32 convolution: real x (N, C, H, W) ⊛ ±m weights (packed on disk), padded with
    pad_value, then * alpha + bias per channel (``BinaryConv2d.forward`` without an input
    quantizer)."""
    a = op.attrs
    shape = (a["out_channels"], a["in_channels"], *a["kernel_size"])
    y = _real_conv2d(_as_float(rt, x), _unpacked_weight(rt, op, shape), None, a["stride"],
                     a["padding"], a["pad_value"])
    alpha, bias = rt.array(op, "alpha"), rt.array(op, "bias")
    if alpha is not None:
        y = y * _channel_view(alpha, 4)
    if bias is not None:
        y = y + _channel_view(bias, 4)
    return y


def op_binary_weight_linear(rt, op, x):
    """W1A32 fully connected layer: x (N, K) @ (±m weights).T * alpha + bias -> (N, O)."""
    a = op.attrs
    y = _as_float(rt, x) @ _unpacked_weight(rt, op, (a["out_features"], a["in_features"])).T
    alpha, bias = rt.array(op, "alpha"), rt.array(op, "bias")
    if alpha is not None:
        y = y * alpha
    if bias is not None:
        y = y + bias
    return y


class OpSpec(NamedTuple):
    """How to run an op and what it needs: ``run(rt, op, *inputs)``, the number of inputs, the
    array roles it must have and those it may have."""

    run: Callable
    n_inputs: int
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


_INPUT_ROLES = ("input_shift", "input_divisor")

#: every op an inference model may contain
OPS: dict[str, OpSpec] = {
    "binary_conv2d": OpSpec(op_binary_conv2d, 1, ("weight",),
                            _INPUT_ROLES + ("scale", "bias", "flip", "threshold")),
    "binary_linear": OpSpec(op_binary_linear, 1, ("weight",),
                            _INPUT_ROLES + ("scale", "bias", "flip", "threshold")),
    "binary_weight_conv2d": OpSpec(op_binary_weight_conv2d, 1, ("weight",),
                                   ("magnitude", "alpha", "bias")),
    "binary_weight_linear": OpSpec(op_binary_weight_linear, 1, ("weight",),
                                   ("magnitude", "alpha", "bias")),
    "threshold": OpSpec(op_threshold, 1, ("flip", "threshold")),
    "conv2d": OpSpec(op_conv2d, 1, ("weight",), ("bias",)),
    "linear": OpSpec(op_linear, 1, ("weight",), ("bias",)),
    "batch_norm": OpSpec(op_batch_norm, 1, ("mean", "inv_std"), ("weight", "bias")),
    "relu": OpSpec(op_relu, 1),
    "hardtanh": OpSpec(op_hardtanh, 1),
    "prelu": OpSpec(op_prelu, 1, ("slope",)),
    "rprelu": OpSpec(op_rprelu, 1, ("gamma", "beta", "zeta")),
    "shift": OpSpec(op_shift, 1, ("bias",)),
    "scale": OpSpec(op_scale, 1, ("weight",)),
    "max_pool2d": OpSpec(op_max_pool2d, 1),
    "avg_pool2d": OpSpec(op_avg_pool2d, 1),
    "global_avg_pool": OpSpec(op_global_avg_pool, 1),
    "adaptive_avg_pool2d": OpSpec(op_adaptive_avg_pool2d, 1),
    "flatten": OpSpec(op_flatten, 1),
    "subsample": OpSpec(op_subsample, 1),
    "pad_channels": OpSpec(op_pad_channels, 1),
    "add": OpSpec(op_add, 2),
}

#: real-valued ops that act on each channel separately: a chain of them between two binary
#: layers collapses into a sign threshold per channel
_PER_CHANNEL = ("batch_norm", "hardtanh", "relu", "prelu", "rprelu", "shift", "scale")
_BINARY = ("binary_conv2d", "binary_linear")


# ---------------------------------------------------------------------------------------------
# Fused steps on the "numba" backend
# ---------------------------------------------------------------------------------------------


class _Step(NamedTuple):
    """What ``predict`` runs: ``run(rt, *values)`` with the values named ``inputs``, giving the
    values named ``outputs`` (one value, or a tuple of as many); ``ops`` are the ops it performs
    (one, or a fused chain)."""

    run: Callable
    ops: tuple
    inputs: tuple
    outputs: tuple


#: ops that a fused float tail can chain, in the order they may follow each other
_FUSABLE = ("batch_norm", "add", "hardtanh")
#: a downsampling shortcut, fused into one pass or into the output stage of a convolution
_POOL_PAD = ("avg_pool2d", "pad_channels")
#: ops whose output is a new array of their own (not a view of their input or of an array)
_FRESH = ("binary_conv2d", "binary_weight_conv2d", "conv2d", "linear", "binary_linear",
          "binary_weight_linear")


def _fused_steps(ops: list[Op], output: str) -> list[_Step]:
    """One step per op, except for these chains, whose intermediate values have no other reader;
    each becomes one step, placed where its last op was (its other inputs are written before):

    * binary_conv2d (float output) -> [batch_norm] -> [add] -> [hardtanh], a residual unit:
      the float tail runs in the convolution's output stage (``kernels.conv.FloatTail``), and
      so does the add's avg_pool2d -> pad_channels shortcut when nothing else reads it;
    * [batch_norm] -> [add] -> [hardtanh] after any other op: one compiled pass;
    * avg_pool2d (no padding) -> pad_channels, a downsampling shortcut: one compiled pass.

    Where a binary_conv2d without input shift or divisor reads the output of such a residual
    unit, the unit's output stage also writes that output's signs as packed bits (value
    "<name>/sign"), and the convolution reads those instead of the floats.
    """
    users = _consumers(ops)
    groups = _with_shortcuts(ops, _tail_groups(ops, output, users),
                             _pool_pad_groups(ops, output, users), users)
    group_of = {i: group for group in groups for i in group}
    signed = _signed_values(ops, groups)
    steps = []
    for i, op in enumerate(ops):
        group = group_of.get(i)
        if group is None:
            steps.append(_single_step(op))
        elif i == group[-1]:
            steps.append(_group_step(ops, group, users, output, signed))
    return [_reading_signs(step, signed) for step in steps]


def _with_shortcuts(ops: list[Op], tails: list[list[int]], pool_pads: list[list[int]],
                    users: dict) -> list[list[int]]:
    """The groups with each pool-pad group that only a convolution tail group's add reads merged
    into that group (a square pool whose stride is its size: what the output stage computes)."""
    pad_at = {ops[group[1]].output: group for group in pool_pads}
    merged = []
    for group in tails:
        kinds = [ops[i].kind for i in group]
        add = next((ops[i] for i in group if ops[i].kind == "add"), None)
        shortcut = None if add is None else pad_at.get(add.inputs[1])
        if (shortcut is not None and kinds[0] == "binary_conv2d"
                and len(users[add.inputs[1]]) == 1 and add.inputs[0] != add.inputs[1]):
            pool = ops[shortcut[0]].attrs
            if len(set(pool["kernel_size"] + pool["stride"])) == 1:
                pool_pads.remove(shortcut)
                group = sorted(group + shortcut)
        merged.append(group)
    return merged + pool_pads


def _signed_values(ops: list[Op], groups: list[list[int]]) -> set[str]:
    """The outputs of convolution tail groups that a binary_conv2d without input shift or
    divisor reads: their output stages write the signs too (see ``_fused_steps``)."""
    tails = {ops[g[-1]].output for g in groups if ops[g[0]].kind == "binary_conv2d"}
    return {op.inputs[0] for op in ops
            if op.kind == "binary_conv2d" and op.inputs[0] in tails
            and not any(role in op.arrays for role in _INPUT_ROLES)}


def _reading_signs(step: _Step, signed: set[str]) -> _Step:
    """``step``, reading the packed signs of its input when it is a binary convolution whose
    input has them."""
    if step.ops[0].kind != "binary_conv2d" or step.inputs[0] not in signed:
        return step
    return step._replace(inputs=(f"{step.inputs[0]}/sign",) + step.inputs[1:])


def _sole_reader(ops, users, i: int, output: str) -> int | None:
    """The index of the only op reading op i's output (None if several, none, or the output)."""
    readers = users.get(ops[i].output, [])
    if ops[i].output == output or len(readers) != 1:
        return None
    return readers[0]


def _tail_groups(ops: list[Op], output: str, users: dict) -> list[list[int]]:
    """The op indices of every [binary_conv2d] -> [batch_norm] -> [add] -> [hardtanh] chain."""
    index = {op.output: i for i, op in enumerate(ops)}
    groups, taken = [], set()
    for i, op in enumerate(ops):
        if op.kind not in _FUSABLE or i in taken:
            continue
        group = [i]
        while True:
            j = _sole_reader(ops, users, group[-1], output)
            if j is None:
                break
            last, following = ops[group[-1]], ops[j]
            if (following.kind not in _FUSABLE or j in taken
                    or _FUSABLE.index(following.kind) <= _FUSABLE.index(last.kind)
                    or len(set(following.inputs)) != len(following.inputs)):
                break
            group.append(j)
        conv = index.get(op.inputs[0])
        if (conv is not None and ops[conv].kind == "binary_conv2d"
                and ops[conv].attrs["mode"] == "float"
                and _sole_reader(ops, users, conv, output) == i):
            group.insert(0, conv)
        taken.update(group)
        groups.append(group)
    return groups


def _pool_pad_groups(ops: list[Op], output: str, users: dict) -> list[list[int]]:
    """The op indices of every avg_pool2d (without padding) -> pad_channels pair."""
    groups = []
    for i, op in enumerate(ops):
        j = _sole_reader(ops, users, i, output)
        if (op.kind == "avg_pool2d" and not any(op.attrs["padding"]) and j is not None
                and ops[j].kind == "pad_channels"):
            groups.append([i, j])
    return groups


def _group_step(ops: list[Op], group: list[int], users: dict, output: str,
                signed: set[str]) -> _Step:
    """The step running the chain ``group`` of ``_fused_steps``."""
    members = tuple(ops[j] for j in group)
    shortcut = tuple(m for m in members if m.kind in _POOL_PAD)
    chain = tuple(m for m in members if m.kind not in _POOL_PAD)
    if not chain:
        run = functools.partial(_run_pool_pad, pool=shortcut[0], pad=shortcut[1])
        return _Step(run, shortcut, tuple(shortcut[0].inputs), (shortcut[1].output,))
    inputs = list(chain[0].inputs)                     # x (and the residual if it is the add)
    for before, member in zip(chain, chain[1:]):
        if member.kind == "add":                       # x + residual: the input not from before
            inputs.append(shortcut[0].inputs[0] if shortcut
                          else next(v for v in member.inputs if v != before.output))
    outputs = (chain[-1].output,)
    if chain[0].kind == "binary_conv2d":
        sign_bits = chain[-1].output in signed
        run = functools.partial(_run_conv_tail, conv=chain[0], members=chain[1:],
                                shortcut=shortcut or None, sign_bits=sign_bits)
        if sign_bits:
            outputs += (f"{chain[-1].output}/sign",)
    else:
        # the fused pass may write over x when nothing else reads it and it is a fresh array
        # (a convolution's output), which spares allocating the output
        source = next((op for op in ops if op.output == inputs[0]), None)
        in_place = (len(users[inputs[0]]) == 1 and source is not None
                    and source.kind in _FRESH and inputs[0] != output)
        run = functools.partial(_run_fused, members=chain, in_place=in_place)
    return _Step(run, chain + shortcut, tuple(inputs), outputs)


def _single_step(op: Op) -> _Step:
    """The step that runs one op by itself."""
    return _Step(lambda rt, *values, op=op: OPS[op.kind].run(rt, op, *values), (op,),
                 tuple(op.inputs), (op.output,))


def _run_conv_tail(rt, x, residual=None, *, conv, members, shortcut=None, sign_bits=False):
    """A binary convolution (float output) whose float tail ``members`` ([batch_norm] -> [add]
    -> [hardtanh]) runs in the kernel's output stage: the same float32 operations in the same
    order as the separate ops (``kernels.conv.FloatTail``), so the values are the same.

    ``shortcut``: the (avg_pool2d, pad_channels) ops that make the add's residual from
    ``residual``, done in the output stage too. ``sign_bits``: return (output, its signs as
    PackedBits). A residual the kernel cannot take (e.g. one that broadcasts) falls back to
    the separate ops and ``_run_fused``."""
    pool = 1 if shortcut is None else shortcut[0].attrs["kernel_size"][0]
    offset = 0 if shortcut is None else shortcut[1].attrs["before"]
    tail = _float_tail(rt, members, residual, pool, offset)
    if residual is not None and not _fits_output(residual, tail, _binary_conv_shape(conv, x)):
        if shortcut is not None:
            residual = op_pad_channels(rt, shortcut[1], op_avg_pool2d(rt, shortcut[0], residual))
        y = _run_fused(rt, op_binary_conv2d(rt, conv, x), residual, members=members,
                       in_place=True)
        return (y, PackedBits(pack_bits(y, axis=-1), y.shape[3])) if sign_bits else y
    return op_binary_conv2d(rt, conv, x, tail=tail, sign_bits=sign_bits)


def _float_tail(rt, members, residual, pool: int, offset: int) -> FloatTail:
    """The kernels' FloatTail of a [batch_norm] -> [add] -> [hardtanh] chain."""
    bn = members[0] if members and members[0].kind == "batch_norm" else None
    clip = next((m for m in members if m.kind == "hardtanh"), None)
    return FloatTail(mean=None if bn is None else rt.array(bn, "mean"),
                     inv_std=None if bn is None else rt.array(bn, "inv_std"),
                     gamma=None if bn is None else rt.array(bn, "weight"),
                     beta=None if bn is None else rt.array(bn, "bias"),
                     residual=residual,
                     clip=None if clip is None else (clip.attrs["min_val"], clip.attrs["max_val"]),
                     residual_pool=pool, residual_offset=offset)


def _fits_output(residual, tail: FloatTail, out_shape) -> bool:
    """Whether the kernel takes ``residual`` as the tail's residual for an output of
    ``out_shape``: a float32 NumPy array whose shortcut has exactly that shape."""
    pool = tail.residual_pool
    return (isinstance(residual, np.ndarray) and residual.dtype == np.float32
            and residual.ndim == 4 and residual.shape[0] == out_shape[0]
            and residual.shape[2] // pool == out_shape[2]
            and residual.shape[3] // pool == out_shape[3]
            and (residual.shape[1] == out_shape[1] if pool == 1 and tail.residual_offset == 0
                 else tail.residual_offset + residual.shape[1] <= out_shape[1]))


def _run_fused(rt, x, residual=None, *, members, in_place=False):
    """Run a fused [batch_norm] -> [add] -> [hardtanh] chain in one compiled pass:
    v = ((x - mean) * inv_std) * weight + bias;  v = v + residual;  v = clip(v, low, high),
    each a float32 operation in the order of the separate ops, so the values are the same.
    ``in_place``: write the result over x (the plan allows it when no other step reads x)."""
    usual = (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim >= 2
             and (residual is None or (isinstance(residual, np.ndarray)
                                       and residual.shape == x.shape
                                       and residual.dtype == np.float32)))
    if not usual:                                   # e.g. broadcasting: one op after the other
        value = x
        for m in members:
            value = OPS[m.kind].run(rt, m, *((value, residual) if m.kind == "add" else (value,)))
        return value
    none = np.zeros(1, np.float32)
    bn = members[0] if members[0].kind == "batch_norm" else None

    def array(role):
        found = None if bn is None else rt.array(bn, role)
        return none if found is None else found

    clip = next((m for m in members if m.kind == "hardtanh"), None)
    low = np.float32(clip.attrs["min_val"] if clip else 0.0)
    high = np.float32(clip.attrs["max_val"] if clip else 0.0)
    x3 = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
    r3 = x3 if residual is None else np.ascontiguousarray(residual).reshape(x3.shape)
    out = x3 if in_place else np.empty_like(x3)      # x3: a view of x, or a private copy
    _numba_epilogue()(x3, array("mean"), array("inv_std"), array("weight"), array("bias"), r3,
                      low, high, bn is not None, "weight" in getattr(bn, "arrays", ()),
                      "bias" in getattr(bn, "arrays", ()), residual is not None,
                      clip is not None, out)
    return out.reshape(x.shape)


@functools.cache
def _numba_epilogue():
    """The compiled fused pass (compiled on first use, cached on disk by Numba)."""
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def epilogue(x, mean, inv_std, weight, bias, residual, low, high, has_bn, has_weight,
                 has_bias, has_residual, has_clip, out):
        n, c, length = x.shape
        for job in prange(n * c):                 # one (image, channel) row per job
            i = job // c
            ch = job - i * c
            for t in range(length):
                v = x[i, ch, t]                   # float32 throughout, never float64
                if has_bn:
                    v = v - mean[ch]
                    v = v * inv_std[ch]
                    if has_weight:
                        v = v * weight[ch]
                    if has_bias:
                        v = v + bias[ch]
                if has_residual:
                    v = v + residual[i, ch, t]
                if has_clip:
                    v = min(max(v, low), high)
                out[i, ch, t] = v

    return epilogue


def _run_pool_pad(rt, x, *, pool, pad):
    """avg_pool2d (no padding) then pad_channels in one compiled pass, with the float32
    operations of ``op_avg_pool2d`` (the window's values summed in window order, then divided);
    anything but a float32 NumPy x runs the two ops one after the other."""
    if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 4):
        return op_pad_channels(rt, pad, op_avg_pool2d(rt, pool, x))
    (kh, kw), (sh, sw) = pool.attrs["kernel_size"], pool.attrs["stride"]
    before, after = pad.attrs["before"], pad.attrs["after"]
    n, c, h, w = x.shape
    out = np.empty((n, before + c + after, (h - kh) // sh + 1, (w - kw) // sw + 1), np.float32)
    _numba_pool_pad()(np.ascontiguousarray(x), kh, kw, sh, sw, before, out)
    return out


@functools.cache
def _numba_pool_pad():
    """The compiled pass of ``_run_pool_pad`` (compiled on first use, cached on disk)."""
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def pool_pad(x, kh, kw, sh, sw, before, out):
        """out[:, before + c] = average pool of x[:, c] (N, C, H, W); other channels 0."""
        n, c = x.shape[0], x.shape[1]
        channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
        divisor = np.float32(kh * kw)
        for job in prange(n * channels):              # one (image, output channel) per job
            i = job // channels
            co = job - i * channels
            ci = co - before
            target = out[i, co]
            if ci < 0 or ci >= c:
                target[:] = 0
                continue
            image = x[i, ci]
            for a in range(out_h):                    # float32 sums in window order
                row = target[a]
                for t in range(kh * kw):
                    source = image[a * sh + t // kw]
                    offset = t % kw
                    if t == 0:
                        for b in range(out_w):
                            row[b] = source[b * sw]
                    else:
                        for b in range(out_w):
                            row[b] += source[b * sw + offset]
                for b in range(out_w):
                    row[b] /= divisor

    return pool_pad



# =============================================================================================
# The inference model
# =============================================================================================


def _array_module(backend: str):
    """numpy, or cupy for the "cupy" backend (the kernels check that it is available)."""
    if backend == "cupy":
        import cupy
        return cupy
    return np


class InferenceModel:
    """An exported model: a list of :class:`Op` s over named values, and the arrays they use.

    Attributes:
        ops: the ops in execution order.
        arrays: key -> NumPy array (packed weights as uint64, the rest float32/int32).
        output: the name of the value ``predict`` returns (``"input"`` names the input).
        meta: JSON-able facts: input_shape (or None), exact, the source model's class, ...
    """

    def __init__(self, ops: list[Op], arrays: dict[str, np.ndarray], output: str,
                 meta: dict | None = None):
        self.ops = list(ops)
        self.arrays = dict(arrays)
        self.output = output
        self.meta = dict(meta or {})
        self._device_arrays: dict[str, dict] = {}
        self._caches: dict[str, dict] = {}
        self._plans: dict[str, tuple] = {}
        self._validate()

    # -- checks ---------------------------------------------------------------------------
    def _validate(self) -> None:
        """ConfigError unless every op is known, reads values written before it, and has its
        arrays."""
        defined = {INPUT}
        for i, op in enumerate(self.ops):
            spec = OPS.get(op.kind)
            if spec is None:
                raise ConfigError(f"op {i} has unknown kind {op.kind!r}; known ops: "
                                  f"{', '.join(OPS)}")
            if len(op.inputs) != spec.n_inputs:
                raise ConfigError(f"op {i} ({op.kind}) needs {spec.n_inputs} input(s), has "
                                  f"{len(op.inputs)}")
            for name in op.inputs:
                if name not in defined:
                    raise ConfigError(f"op {i} ({op.kind}) reads value {name!r} before any op "
                                      f"writes it")
            missing = [r for r in spec.required if r not in op.arrays]
            unknown = [r for r in op.arrays if r not in spec.required + spec.optional]
            absent = [k for k in op.arrays.values() if k not in self.arrays]
            if missing or unknown or absent:
                raise ConfigError(f"op {i} ({op.kind}): missing arrays {missing}, unknown roles "
                                  f"{unknown}, keys not in the array table {absent}")
            if op.output in defined:
                raise ConfigError(f"op {i} ({op.kind}) writes value {op.output!r} a second time")
            defined.add(op.output)
        if self.output not in defined:
            raise ConfigError(f"the output value {self.output!r} is never written")

    # -- running --------------------------------------------------------------------------
    def _runtime(self, backend: str) -> _Run:
        backend = resolve_backend(backend)
        if backend not in self._device_arrays:
            xp = _array_module(backend)
            self._device_arrays[backend] = {k: xp.asarray(v) for k, v in self.arrays.items()}
            self._caches[backend] = {}
        return _Run(_array_module(backend), backend, self._device_arrays[backend],
                    self._caches[backend])

    def _check_input(self, x):
        shape = self.meta.get("input_shape")
        if getattr(x, "ndim", 0) < 1:
            raise ShapeError(f"predict needs a batch (N, ...), got {type(x).__name__}")
        if shape is not None and tuple(x.shape[1:]) != tuple(shape):
            raise ShapeError(f"this model takes inputs of shape (N, {', '.join(map(str, shape))}), "
                             f"got {tuple(x.shape)}; add the batch axis (x[None]) or resize")

    def _plan(self, backend: str) -> tuple[list["_Step"], dict[str, int]]:
        """The steps that run the ops on ``backend`` and, for each value, the index of the last
        step that reads it. One step per op, except on "numba", where chains of ops run as one
        step (``_fused_steps``)."""
        if backend not in self._plans:
            steps = (_fused_steps(self.ops, self.output) if backend == "numba" else
                     [_single_step(op) for op in self.ops])
            last_use = {name: i for i, step in enumerate(steps) for name in step.inputs}
            self._plans[backend] = (steps, last_use)
        return self._plans[backend]

    def _run(self, rt: _Run, x, timings: list | None = None):
        steps, last_use = self._plan(rt.backend)
        values = {INPUT: x}
        for i, step in enumerate(steps):
            started = time.perf_counter() if timings is not None else 0.0
            out = step.run(rt, *(values[name] for name in step.inputs))
            if timings is not None:
                if hasattr(rt.xp, "cuda"):
                    rt.xp.cuda.Stream.null.synchronize()
                timings.append(time.perf_counter() - started)
            for name in step.inputs:                    # free what no later step reads
                if last_use[name] == i and name != self.output:
                    values.pop(name, None)
            values.update(zip(step.outputs, out if len(step.outputs) > 1 else (out,)))
        return values[self.output]

    def predict(self, x, backend: str = "numba", batch_size: int | None = None) -> np.ndarray:
        """Logits of a batch.

        Args:
            x: (N, *input_shape) array (converted to float32).
            backend: "numba" (fast CPU kernels), "numpy" (the reference kernels) or "cupy".
            batch_size: run at most this many inputs at a time (None: all at once).

        Returns:
            (N, outputs) float32 NumPy array: the same values as the model's eval forward.
        """
        rt = self._runtime(backend)
        x = rt.xp.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float32)
        self._check_input(x)
        if batch_size is None or batch_size >= len(x):
            return np.asarray(to_numpy(self._run(rt, x)), dtype=np.float32)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        parts = [to_numpy(self._run(rt, x[i:i + batch_size]))
                 for i in range(0, len(x), batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def profile(self, x, backend: str = "numba") -> list[dict]:
        """Run once and time every step (an op, or a fused group of ops on "numba"): a list of
        {index, kind, source, seconds, share}, the slowest first (which kernel call
        dominates?)."""
        rt = self._runtime(backend)
        x = rt.xp.asarray(x, dtype=np.float32)
        self._check_input(x)
        timings: list[float] = []
        self._run(rt, x, timings)
        total = sum(timings) or 1.0
        steps, _ = self._plan(rt.backend)
        rows = [{"index": i, "kind": "+".join(op.kind for op in step.ops),
                 "source": step.ops[0].source, "seconds": t, "share": t / total}
                for i, (step, t) in enumerate(zip(steps, timings))]
        return sorted(rows, key=lambda row: -row["seconds"])

    # -- facts ----------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes of all arrays (the file adds a few kB of zip headers and JSON)."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def binary_layers(self) -> list[Op]:
        return [op for op in self.ops if op.kind.startswith("binary_")]

    def describe(self) -> str:
        """One line per op: index, kind, inputs -> output, settings, the module it came from."""
        lines = [f"InferenceModel: {len(self.ops)} ops, {len(self.binary_layers())} binary "
                 f"layers, {self.nbytes / 1024:.1f} KiB of arrays"]
        for i, op in enumerate(self.ops):
            keys = ("mode", "kernel_size", "stride", "padding", "pad_value", "start_dim")
            settings = ", ".join(f"{k}={op.attrs[k]}" for k in keys if k in op.attrs)
            lines.append(f"{i:4d}  {op.kind:<22} {', '.join(op.inputs)} -> {op.output}"
                         f"  {settings}  [{op.source}]")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.describe()

    # -- files ----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the model to one ``.npz`` file (see the module docstring), atomically."""
        from ..train.checkpoint import atomic_write

        path = Path(path)
        meta = dict(self.meta)
        meta.update({
            "format": FORMAT, "version": VERSION, "output": self.output,
            "ops": [op.to_json() for op in self.ops],
            "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape)}
                       for k, a in sorted(self.arrays.items())},
            "sha256": _checksum(self.arrays),
        })
        content = dict(self.arrays)
        content[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        atomic_write(path, lambda fh: np.savez_compressed(fh, **content))
        return path

    @classmethod
    def load(cls, path) -> "InferenceModel":
        """Read a file written by :meth:`save`.

        Raises:
            CheckpointError: naming the file and the problem, if it is missing, truncated,
                corrupt, not an exported model, of another format version, or if its arrays do
                not match its description or its checksum.
        """
        path = Path(path)
        arrays = _read_archive(path)
        meta = _read_meta(path, arrays)
        described = meta.get("arrays")
        if not isinstance(described, dict):
            raise CheckpointError(f"exported model {path} has no array table in its metadata")
        missing = sorted(set(described) - set(arrays))
        extra = sorted(set(arrays) - set(described))
        if missing or extra:
            raise CheckpointError(f"exported model {path} is mismatched: arrays {missing[:5]} are "
                                  f"described but missing, {extra[:5]} are present but not "
                                  f"described")
        for key, info in described.items():
            array = arrays[key]
            if array.dtype.str != info.get("dtype") or list(array.shape) != info.get("shape"):
                raise CheckpointError(f"exported model {path} is mismatched: array {key!r} is "
                                      f"{array.dtype.str} {list(array.shape)}, its metadata says "
                                      f"{info.get('dtype')} {info.get('shape')}")
        if _checksum(arrays) != meta.get("sha256"):
            raise CheckpointError(f"exported model {path} fails its SHA-256 checksum: the arrays "
                                  f"were changed or damaged after it was written; export it again")
        try:
            ops = [Op.from_json(record) for record in meta["ops"]]
            extra_meta = {k: v for k, v in meta.items()
                          if k not in ("format", "version", "output", "ops", "arrays", "sha256")}
            return cls(ops, arrays, str(meta["output"]), extra_meta)
        except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"exported model {path} is inconsistent: {e}") from None


def _checksum(arrays: dict) -> str:
    """SHA-256 of every array's key, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(key.encode("utf-8"))
        digest.update(array.dtype.str.encode("ascii"))
        digest.update(repr(tuple(array.shape)).encode("ascii"))
        digest.update(array.tobytes())
    return digest.hexdigest()


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    from ..train.checkpoint import read_npz

    return read_npz(path, "exported model",
                    f"write one with `tinybnn export --checkpoint ... --out {path.name}`",
                    "export it again")


def _read_meta(path: Path, arrays: dict) -> dict:
    from ..train.checkpoint import read_json_meta

    meta = read_json_meta(path, arrays, "exported model", "an exported tinybnn model")
    kind = meta.get("format") if isinstance(meta, dict) else None
    if kind == "tinybnn-checkpoint":
        raise CheckpointError(f"{path} is a training checkpoint, not an exported model; export it "
                              f"first: tinybnn export --checkpoint {path}")
    if kind != FORMAT:
        raise CheckpointError(f"{path} is not an exported tinybnn model (format {kind!r}, "
                              f"expected {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"exported model {path} has format version {meta.get('version')}, "
                              f"this tinybnn reads version {VERSION}; export it again")
    return meta


# =============================================================================================
# Quantizers: what may be exported, and how
# =============================================================================================


@dataclass
class Binarizer:
    """An input quantizer whose eval forward is ``scale · sign((x + shift) / divisor)``.

    shift: (C,) or (1,) float32, or None; divisor: (1,) float32 or None; scale: float or None.
    """

    shift: np.ndarray | None = None
    divisor: np.ndarray | None = None
    scale: float | None = None


#: quantizers whose eval forward is sign(x) (sign(0) = +1); they differ only in the backward
SIGN_QUANTIZERS = (SteSign, IdentitySte, ApproxSignQuantizer, SwishSignQuantizer, EDE, RecuAct)


def _quantizer_name(q) -> str:
    return getattr(q, "registry_name", type(q).__name__)


def input_binarizer(quantizer, where: str = "") -> Binarizer | None:
    """How an input quantizer binarizes, in eval mode; None for no quantizer (W1A32).

    Exported: ste_sign, identity_ste, approx_sign, swish_sign, ede, recu_act (eval: sign(x)),
    rsign (sign(x + b), b per channel) and the signed elastic binarizer (α·sign((x + b)/α)).

    Raises:
        ConfigError: naming the quantizer and the reason, for {0, 1} outputs (heaviside, unsigned
            elastic, dorefa_act), multi-bit ones (dorefa_act, lsq) and any other.
    """
    if quantizer is None:
        return None
    name, kind = _quantizer_name(quantizer), type(quantizer)
    where = f"{where}: " if where else ""
    if kind in SIGN_QUANTIZERS:
        return Binarizer()
    if kind is RSign:
        return Binarizer(shift=_float32(quantizer.b.data))
    if kind is Elastic:
        if not quantizer.signed:
            raise ConfigError(f"{where}input quantizer {name!r} (unsigned elastic) outputs "
                              f"{{0, α}}, not ±α: an XNOR-popcount needs ±1 activations; use the "
                              f"signed form (Elastic(signed=True)) to export")
        alpha = _float32(quantizer.alpha.data).reshape(1)
        return Binarizer(shift=_float32(quantizer.b.data), divisor=alpha, scale=float(alpha[0]))
    if kind is Heaviside or getattr(quantizer, "levels", "pm1") == "01":
        raise ConfigError(f"{where}input quantizer {name!r} outputs {{0, 1}} (levels '01'), not "
                          f"±1: an XNOR-popcount computes ±1 dot products only; train with a "
                          f"sign quantizer (ste_sign, approx_sign, rsign, ...) to export")
    if getattr(quantizer, "bits", 1) != 1:
        raise ConfigError(f"{where}input quantizer {name!r} has {quantizer.bits} bits: the export "
                          f"packs 1-bit activations only; multi-bit layers cannot be exported")
    raise ConfigError(f"{where}input quantizer {name!r} ({kind.__name__}) is not known to be "
                      f"s·sign((x + b)/a) in eval mode, so it cannot be turned into packed bits; "
                      f"exportable: ste_sign, identity_ste, approx_sign, swish_sign, ede, "
                      f"recu_act, rsign, elastic (signed)")


def binary_weight(layer, where: str = "") -> tuple[np.ndarray, np.ndarray | None]:
    """The packed signs of Q(W) and its per-output-channel magnitude.

    Returns:
        (bits, magnitude): bits (O, ceil(K/64)) uint64, ``pack_bits(Q(W).reshape(O, -1))``;
        magnitude (O,) float32 with |Q(W)| = magnitude[o] throughout channel o, or None when it is
        1 everywhere (ste_sign and friends).

    Raises:
        ConfigError: no weight quantizer, a multi-bit one, a progressive binarization whose
            temperature is not yet below its threshold, or |Q(W)| not constant per channel.
    """
    quantizer = layer.weight_quantizer
    where = f"{where}: " if where else ""
    if quantizer is None:
        raise ConfigError(f"{where}{type(layer).__name__} has no weight quantizer (real weights): "
                          f"only binary weights can be packed")
    name = _quantizer_name(quantizer)
    if getattr(quantizer, "bits", 1) != 1:
        raise ConfigError(f"{where}weight quantizer {name!r} has {quantizer.bits} bits: the export "
                          f"packs 1-bit weights only")
    if isinstance(quantizer, Progressive):
        temperature = float(quantizer.temperature)
        if temperature >= quantizer.threshold:
            raise ConfigError(f"{where}weight quantizer 'progressive' is not binary yet: its "
                              f"temperature T = {temperature:.3g} is not below the threshold "
                              f"{quantizer.threshold:g}, so Q(W) = clip(W/T, -1, 1) is real; train "
                              f"until T < {quantizer.threshold:g} before exporting")
    with _eval_mode(layer), no_grad():     # eval: no in-place clamp, no first-batch init
        q = to_numpy(layer.quantized_weight().data)
    q = q.reshape(q.shape[0], -1)
    magnitude = np.abs(q)
    per_channel = magnitude[:, 0]
    uneven = np.flatnonzero(np.any(magnitude != per_channel[:, None], axis=1))
    if uneven.size:
        c = int(uneven[0])
        raise ConfigError(f"{where}weight quantizer {name!r} does not give ±m per output channel: "
                          f"|Q(W)| of channel {c} takes values from {magnitude[c].min():.4g} to "
                          f"{magnitude[c].max():.4g}, so its signs and one scale cannot "
                          f"represent it")
    bits = pack_bits(q, axis=-1)
    if np.all(per_channel == 1):
        return bits, None
    return bits, per_channel.astype(np.float32)


def _float32(array) -> np.ndarray:
    return np.ascontiguousarray(to_numpy(array), dtype=np.float32)


def _product(factors, channels: int) -> np.ndarray | None:
    """The elementwise product of the given per-channel factors (None ones skipped), float32;
    a single factor is returned exactly as it is."""
    present = [np.broadcast_to(np.asarray(f, np.float32), (channels,))
               for f in factors if f is not None]
    if not present:
        return None
    if len(present) == 1:
        return np.array(present[0], dtype=np.float32)
    out = np.ones(channels, dtype=np.float64)
    for f in present:
        out = out * f
    return out.astype(np.float32)


# =============================================================================================
# Walking the model
# =============================================================================================


@contextlib.contextmanager
def _eval_mode(model):
    """Put every module in eval mode for the block, then restore each one's own flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            object.__setattr__(module, "training", flag)


class _Builder:
    """Turns modules into ops. ``visit(module, x, name)`` emits the ops of ``module`` applied to
    the value ``x`` and returns the name of its output value."""

    def __init__(self):
        self.ops: list[Op] = []
        self.arrays: dict[str, np.ndarray] = {}
        self._count = 0
        self._handlers = {
            nn.Sequential: self._sequential, nn.Identity: self._identity,
            nn.Dropout: self._identity, nn.Flatten: self._flatten, nn.Linear: self._linear,
            nn.Conv2d: self._conv2d, nn.BatchNorm1d: self._batch_norm,
            nn.BatchNorm2d: self._batch_norm, nn.ReLU: self._simple("relu"),
            nn.Hardtanh: self._hardtanh, nn.PReLU: self._prelu, nn.RPReLU: self._rprelu,
            nn.LearnableBias: self._learnable_bias, nn.Scale: self._scale,
            nn.MaxPool2d: self._pool("max_pool2d"), nn.AvgPool2d: self._pool("avg_pool2d"),
            nn.AdaptiveAvgPool2d: self._adaptive_avg_pool, GlobalAvgPool: self._simple(
                "global_avg_pool"),
            Subsample: self._subsample, ZeroPadChannels: self._pad_channels,
            BinaryConv2d: self._binary_conv2d, BinaryLinear: self._binary_linear,
            BinaryConvUnit: self._binary_conv_unit, BinaryBasicBlock: self._binary_basic_block,
            BasicBlock: self._basic_block, ResNet: self._resnet, SmallCNN: self._small_cnn,
            VGGSmall: self._vgg_small,
        }

    # -- bookkeeping ----------------------------------------------------------------------
    def emit(self, kind: str, inputs, source: str, attrs=None, arrays=None) -> str:
        """Append an op; ``arrays`` maps role -> array (None entries are left out)."""
        self._count += 1
        output = f"v{self._count}"
        keys = {}
        for role, array in (arrays or {}).items():
            if array is None:
                continue
            key = f"{source or 'model'}/{role}"
            while key in self.arrays:                   # a module used twice
                key += "'"
            self.arrays[key] = np.ascontiguousarray(array)
            keys[role] = key
        self.ops.append(Op(kind, list(inputs), output, dict(attrs or {}), keys, source))
        return output

    def visit(self, module, x: str, name: str) -> str:
        if isinstance(module, SurgeLayer):              # the auxiliary branch only shapes the
            return self.visit(module.layer, x, name)     # training gradients (surge.unwrap)
        handler = self._handlers.get(type(module))
        if handler is None:
            known = sorted({cls.__name__ for cls in self._handlers} | {"SurgeLayer"})
            raise ConfigError(f"cannot export {name or 'the model'}: module type "
                              f"{type(module).__name__} is not supported (the export only knows "
                              f"the forward of: {', '.join(known)})")
        return handler(module, x, name)

    def child(self, module, attr: str, x: str, name: str) -> str:
        return self.visit(getattr(module, attr), x, f"{name}.{attr}" if name else attr)

    # -- containers and model classes -----------------------------------------------------
    def _sequential(self, module, x, name):
        for child_name, child in module.named_children():
            x = self.visit(child, x, f"{name}.{child_name}" if name else child_name)
        return x

    def _identity(self, module, x, name):
        return x

    def _binary_conv_unit(self, m, x, name):
        """act(bn(conv(x)) + shortcut(x))."""
        main = self.child(m, "bn", self.child(m, "conv", x, name), name)
        short = self.child(m, "shortcut", x, name)
        return self.child(m, "act", self.emit("add", [main, short], name), name)

    def _binary_basic_block(self, m, x, name):
        return self.child(m, "unit2", self.child(m, "unit1", x, name), name)

    def _basic_block(self, m, x, name):
        """act2(bn2(conv2(act1(bn1(conv1(x))))) + shortcut(x))."""
        out = x
        for attr in ("conv1", "bn1", "act1", "conv2", "bn2"):
            out = self.child(m, attr, out, name)
        short = self.child(m, "shortcut", x, name)
        return self.child(m, "act2", self.emit("add", [out, short], name), name)

    def _resnet(self, m, x, name):
        for attr in ("conv1", "bn1", "act1"):
            x = self.child(m, attr, x, name)
        if m.pool1 is not None:
            x = self.child(m, "pool1", x, name)
        for i in range(m.num_stages):
            x = self.child(m, f"layer{i + 1}", x, name)
        for attr in ("pool", "bn_fc", "fc"):
            x = self.child(m, attr, x, name)
        return x

    def _small_cnn(self, m, x, name):
        for attr in ("features", "flatten", "bn_fc", "fc"):
            x = self.child(m, attr, x, name)
        return x

    def _vgg_small(self, m, x, name):
        for attr in ("features", "flatten", "fc"):
            x = self.child(m, attr, x, name)
        return x

    # -- real-valued layers ---------------------------------------------------------------
    def _simple(self, kind):
        return lambda m, x, name: self.emit(kind, [x], name)

    def _flatten(self, m, x, name):
        return self.emit("flatten", [x], name, {"start_dim": int(m.start_dim)})

    def _linear(self, m, x, name):
        return self.emit("linear", [x], name, arrays={
            "weight": _float32(m.weight.data),
            "bias": None if m.bias is None else _float32(m.bias.data)})

    def _conv2d(self, m, x, name):
        return self.emit("conv2d", [x], name,
                         {"stride": list(m.stride), "padding": list(m.padding)},
                         {"weight": _float32(m.weight.data),
                          "bias": None if m.bias is None else _float32(m.bias.data)})

    def _batch_norm(self, m, x, name):
        if not m.track_running_stats or m.running_mean is None:
            raise ConfigError(f"cannot export {name}: {type(m).__name__} without running "
                              f"statistics normalises with each batch's own statistics, even in "
                              f"eval mode, so it is not a fixed per-channel transform")
        var = _float32(m.running_var)
        inv_std = (1.0 / np.sqrt(var + float(m.eps))).astype(np.float32)   # as BatchNorm does
        return self.emit("batch_norm", [x], name, {"eps": float(m.eps)}, {
            "mean": _float32(m.running_mean), "inv_std": inv_std,
            "weight": None if m.weight is None else _float32(m.weight.data),
            "bias": None if m.bias is None else _float32(m.bias.data)})

    def _hardtanh(self, m, x, name):
        return self.emit("hardtanh", [x], name,
                         {"min_val": float(m.min_val), "max_val": float(m.max_val)})

    def _prelu(self, m, x, name):
        return self.emit("prelu", [x], name, arrays={"slope": _float32(m.weight.data)})

    def _rprelu(self, m, x, name):
        return self.emit("rprelu", [x], name, arrays={
            "gamma": _float32(m.gamma.data), "beta": _float32(m.beta.data),
            "zeta": _float32(m.zeta.data)})

    def _learnable_bias(self, m, x, name):
        return self.emit("shift", [x], name, arrays={"bias": _float32(m.bias.data)})

    def _scale(self, m, x, name):
        return self.emit("scale", [x], name, arrays={"weight": _float32(m.weight.data)})

    def _pool(self, kind):
        def handler(m, x, name):
            from ..functional.im2col import pair as _pair

            kernel = _pair(m.kernel_size, "kernel_size")
            stride = kernel if m.stride is None else _pair(m.stride, "stride")
            attrs = {"kernel_size": list(kernel), "stride": list(stride),
                     "padding": list(_pair(m.padding, "padding"))}
            if kind == "avg_pool2d":
                attrs["count_include_pad"] = bool(m.count_include_pad)
            return self.emit(kind, [x], name, attrs)
        return handler

    def _adaptive_avg_pool(self, m, x, name):
        from ..functional.im2col import pair as _pair

        return self.emit("adaptive_avg_pool2d", [x], name,
                         {"output_size": list(_pair(m.output_size, "output_size"))})

    def _subsample(self, m, x, name):
        return self.emit("subsample", [x], name, {"stride": int(m.stride)})

    def _pad_channels(self, m, x, name):
        return self.emit("pad_channels", [x], name, {"before": int(m.before),
                                                     "after": int(m.after)})

    # -- binary layers --------------------------------------------------------------------
    def _binary_layer(self, m, x, name, kind: str, attrs: dict, channel_axis: int):
        bits, magnitude = binary_weight(m, name)
        out_channels = bits.shape[0]
        alpha = output_scale(m, m.weight.data)
        alpha = None if alpha is None else _float32(getattr(alpha, "data", alpha))
        bias = None if m.bias is None else _float32(m.bias.data)
        binarizer = input_binarizer(m.input_quantizer, name)
        if binarizer is None:                           # W1A32: real inputs, binary weights
            return self.emit(f"binary_weight_{kind}", [x], name, attrs, {
                "weight": bits, "magnitude": magnitude, "alpha": alpha, "bias": bias})
        if binarizer.scale is not None and getattr(m, "pad_value", 0.0) != 0.0:
            raise ConfigError(f"cannot export {name}: its input quantizer scales the signs by "
                              f"α = {binarizer.scale:.4g} but the border is padded with "
                              f"{m.pad_value:+g}, not ±α, so the output is no multiple of the dot "
                              f"product; use pad_value=0")
        scale = _product([magnitude, binarizer.scale, alpha], out_channels)
        attrs = dict(attrs, mode="float")
        return self.emit(f"binary_{kind}", [x], name, attrs, {
            "weight": bits, "input_shift": binarizer.shift, "input_divisor": binarizer.divisor,
            "scale": scale, "bias": bias})

    def _binary_conv2d(self, m, x, name):
        attrs = {"in_channels": m.in_channels, "out_channels": m.out_channels,
                 "kernel_size": list(m.kernel_size), "stride": list(m.stride),
                 "padding": list(m.padding), "pad_value": float(m.pad_value),
                 "k": m.in_channels * m.kernel_size[0] * m.kernel_size[1]}
        return self._binary_layer(m, x, name, "conv2d", attrs, 1)

    def _binary_linear(self, m, x, name):
        attrs = {"in_features": m.in_features, "out_features": m.out_features,
                 "k": m.in_features}
        return self._binary_layer(m, x, name, "linear", attrs, -1)


# =============================================================================================
# Rewriting the op list: sign thresholds, batch-norm folding
# =============================================================================================


def _add_array(arrays: dict, op: Op, role: str, array) -> str:
    """Store a new array of ``op`` under an unused key "<source>/<role>" and return the key."""
    key = f"{op.source or 'model'}/{role}"
    while key in arrays:
        key += "'"
    arrays[key] = np.ascontiguousarray(array)
    return key


def _consumers(ops: list[Op]) -> dict[str, list[int]]:
    users: dict[str, list[int]] = {}
    for i, op in enumerate(ops):
        for name in op.inputs:
            users.setdefault(name, []).append(i)
    return users


def _sign_chain(ops: list[Op], start: int, arrays: dict, output: str):
    """The ops between binary op ``start`` and the next binary layer, if they can become a
    threshold: a single-consumer path of [max_pool2d] per-channel ops... [flatten] ending in a
    binary_conv2d / binary_linear. Returns (chain indices, consumer index) or None."""
    producer = ops[start]
    users = _consumers(ops)
    value, chain, flattened = producer.output, [], False
    scale = arrays.get(producer.arrays.get("scale", ""), None)
    while True:
        if value == output or len(users.get(value, [])) != 1:
            return None
        j = users[value][0]
        op = ops[j]
        if op.kind in _BINARY:
            if flattened and op.kind == "binary_conv2d":
                return None
            shift = arrays.get(op.arrays.get("input_shift", ""), None)
            if (flattened and producer.kind == "binary_conv2d" and shift is not None
                    and shift.size > 1):
                return None          # a per-feature shift after flatten is not per channel
            return chain, j
        if op.kind == "max_pool2d" and not chain and producer.kind == "binary_conv2d":
            if scale is not None and np.any(scale < 0):
                return None          # max of α·dot is α·min(dot) where α < 0
        elif op.kind in _PER_CHANNEL and not flattened:
            pass
        elif op.kind == "flatten" and op.attrs["start_dim"] == 1:
            flattened = True
        else:
            return None
        chain.append(j)
        value = op.output


def _threshold_values(ops, start, chain, consumer, arrays) -> np.ndarray:
    """The pre-sign value of every output channel of binary op ``start`` at every dot -k..k,
    computed by the very ops the chain runs (and the consumer's own shift/divisor), as
    (channels, 2k+1) float32."""
    producer = ops[start]
    k = producer.attrs["k"]
    channels = arrays[producer.arrays["weight"]].shape[0]
    conv = producer.kind == "binary_conv2d"
    rt = _Run(np, "numpy", arrays, {})
    dots = np.arange(-k, k + 1, dtype=np.int32)[:, None]
    dots = np.ascontiguousarray(np.broadcast_to(dots, (2 * k + 1, channels)))
    if conv:
        dots = dots[:, :, None, None]
    values = _float_epilogue(np, dots, rt.array(producer, "scale"), rt.array(producer, "bias"))
    for j in chain:
        if ops[j].kind not in ("max_pool2d", "flatten"):
            values = OPS[ops[j].kind].run(rt, ops[j], values)
    target = ops[consumer]
    shift, divisor = rt.array(target, "input_shift"), rt.array(target, "input_divisor")
    if shift is not None:
        # the channel axis is 1 both for a convolution's (2k+1, C, 1, 1) probe and for a linear
        # layer's (2k+1, C); after a flatten only a single shared shift gets here
        values = values + _channel_view(shift, values.ndim, 1)
    if divisor is not None:
        values = values / divisor.reshape(())
    return values.reshape(2 * k + 1, channels).T


def fuse_sign_thresholds(ops: list[Op], arrays: dict, output: str) -> list[Op]:
    """Replace every binary layer -> [max-pool] -> per-channel ops -> [flatten] -> binary layer
    path by integer thresholds (see the module docstring, point 4). Paths whose sign is not
    monotone in the dot (e.g. an RPReLU whose negative slope and shift make it +, −, + along the
    dot) are left as they are."""
    ops = list(ops)
    i = 0
    while i < len(ops):
        producer = ops[i]
        found = (_sign_chain(ops, i, arrays, output)
                 if producer.kind in _BINARY and producer.attrs.get("mode") == "float" else None)
        if found is None:
            i += 1
            continue
        chain, consumer = found
        try:
            flip, threshold = threshold_from_values(
                _threshold_values(ops, i, chain, consumer, arrays))
        except ConfigError:
            i += 1
            continue
        target = ops[consumer]
        for role in _INPUT_ROLES:                          # folded into the thresholds now
            target.arrays.pop(role, None)
        for role in ("scale", "bias"):
            producer.arrays.pop(role, None)
        kept = [ops[j] for j in chain if ops[j].kind in ("max_pool2d", "flatten")]
        pooled = bool(kept) and kept[0].kind == "max_pool2d"
        thresholds = {"flip": _add_array(arrays, producer, "flip", flip),
                      "threshold": _add_array(arrays, producer, "threshold", threshold)}
        if pooled:
            # dots -> max-pool (on the integer dots) -> threshold -> [flatten]
            producer.attrs["mode"] = "dots"
            step = Op("threshold", [kept[0].output], kept[0].output + "t", {}, thresholds,
                      producer.source)
            kept.insert(1, step)
        else:
            producer.attrs["mode"] = "bits"
            producer.arrays.update(thresholds)
        previous = producer.output
        for op in kept:
            op.inputs = [previous]
            previous = op.output
        target.inputs = [previous]
        removed = {id(ops[j]) for j in chain}
        ops = ops[:i + 1] + kept + [op for op in ops[i + 1:] if id(op) not in removed]
        i += 1
    return ops


def fold_batch_norms(ops: list[Op], arrays: dict, output: str) -> list[Op]:
    """``exact=False``: merge each batch norm that alone reads a binary op's float output into
    that op's ``dot * scale + bias`` (scale·γ/σ, (bias − mean)·γ/σ + β, computed in float64)."""
    def get(op, role, default):
        return arrays[op.arrays[role]].astype(np.float64) if role in op.arrays else default

    ops = list(ops)
    users = _consumers(ops)
    removed = set()
    for op in ops:
        if op.kind not in _BINARY or op.attrs.get("mode") != "float" or op.output == output:
            continue
        readers = users.get(op.output, [])
        if len(readers) != 1 or ops[readers[0]].kind != "batch_norm":
            continue
        bn = ops[readers[0]]
        factor = get(bn, "inv_std", None) * get(bn, "weight", 1.0)
        scale = get(op, "scale", 1.0) * factor
        bias = (get(op, "bias", 0.0) - get(bn, "mean", None)) * factor + get(bn, "bias", 0.0)
        op.arrays["scale"] = _add_array(arrays, op, "folded_scale", scale.astype(np.float32))
        op.arrays["bias"] = _add_array(arrays, op, "folded_bias", bias.astype(np.float32))
        op.output = bn.output
        removed.add(id(bn))
    return [op for op in ops if id(op) not in removed]


# =============================================================================================
# export
# =============================================================================================


def export(model, input_shape=None, *, exact: bool = True) -> InferenceModel:
    """Turn a trained model into an :class:`InferenceModel` (the module docstring explains how).

    The model is read in eval mode and left as it was (its training flags are restored; SURGE
    layers are read through to the binary layer they wrap, as ``surge.unwrap`` would).

    Args:
        model: a tinybnn model: Sequential, the zoo's ResNet/VGGSmall/SmallCNN, or any nesting of
            the layer types listed in the ConfigError for an unknown one.
        input_shape: the per-example input shape, e.g. (3, 32, 32); optional, recorded so that
            ``predict`` can check its input.
        exact: keep batch norms that feed real-valued paths as separate ops computing exactly the
            training code's float32 values (default); False folds them into the kernels' scale
            and bias (faster, equal up to float32 rounding).

    Raises:
        ConfigError: a module type, quantizer or setting the export does not support, named.
    """
    with _eval_mode(model):
        builder = _Builder()
        output = builder.visit(model, INPUT, "")
    arrays = builder.arrays
    ops = fuse_sign_thresholds(builder.ops, arrays, output)
    if not exact:
        ops = fold_batch_norms(ops, arrays, output)
    used = {key for op in ops for key in op.arrays.values()}
    arrays = {key: value for key, value in arrays.items() if key in used}
    from .. import __version__

    meta = {"model": type(model).__name__, "exact": bool(exact),
            "input_shape": None if input_shape is None else [int(n) for n in input_shape],
            "tinybnn_version": __version__}
    return InferenceModel(ops, arrays, output, meta)


def verify(model, inference: InferenceModel, x, backend: str = "numba") -> dict:
    """Compare ``inference.predict(x)`` with the model's eval forward on the same batch.

    Returns {"max_abs_diff", "max_logit", "argmax_equal"}. The model is left in its mode.
    """
    with _eval_mode(model), no_grad():
        expected = to_numpy(model(Tensor(np.asarray(x, dtype=np.float32))).data)
    got = inference.predict(x, backend=backend)
    return {"max_abs_diff": float(np.max(np.abs(got - expected))),
            "max_logit": float(np.max(np.abs(expected))),
            "argmax_equal": bool(np.array_equal(got.argmax(axis=1), expected.argmax(axis=1)))}


def export_checkpoint(checkpoint_path, out_path, *, exact: bool = True,
                      check: bool = True) -> InferenceModel:
    """Rebuild the model of a training checkpoint, export it and save it to ``out_path``.

    The checkpoint's config names the model, its options and the data set (which gives the input
    shape); ``check`` compares the exported model with the checkpoint's on 4 random inputs and
    records the result in ``meta["check"]``.

    Raises:
        CheckpointError: an unreadable checkpoint, or one without model/data in its config.
        ConfigError: a model the export does not support.
    """
    from ..cli import model_from_checkpoint

    model, checkpoint, info = model_from_checkpoint(checkpoint_path)
    config = checkpoint.config
    inference = export(model, input_shape=info.input_shape, exact=exact)
    inference.meta.update({"model_name": config["model"], "data": info.name,
                           "epoch": checkpoint.epoch, "checkpoint": str(checkpoint.path)})
    if check:
        x = np.random.default_rng(0).standard_normal((4, *info.input_shape)).astype(np.float32)
        inference.meta["check"] = verify(model, inference, x, backend="numpy")
    inference.meta["float32_bytes"] = 4 * sum(int(np.size(v)) for v in model.state_dict().values())
    inference.save(out_path)
    return inference


def export_command(checkpoint, out=None) -> str:
    """``tinybnn export --checkpoint CKPT [--out FILE]``: export and return the line to print.

    ``out`` defaults to ``<checkpoint name>.inference.npz`` next to the checkpoint.
    """
    checkpoint = Path(checkpoint)
    out = Path(out) if out else checkpoint.with_name(f"{checkpoint.stem}.inference.npz")
    inference = export_checkpoint(checkpoint, out)
    meta = inference.meta
    size = out.stat().st_size
    ratio = meta["float32_bytes"] / size
    check = meta.get("check", {})
    verdict = (f"; checked on 4 inputs: max |Δ logit| {check['max_abs_diff']:.2g}, argmax "
               f"{'equal' if check['argmax_equal'] else 'DIFFERENT'}") if check else ""
    return (f"exported {meta['model_name']} ({meta['data']}, epoch {meta['epoch']}) to {out}: "
            f"{len(inference.ops)} ops, {len(inference.binary_layers())} binary layers, "
            f"{size / 1024:.1f} KiB ({ratio:.1f}x smaller than its float32 weights){verdict}")


__all__ = ["FORMAT", "VERSION", "OPS", "Op", "OpSpec", "PackedBits", "InferenceModel",
           "Binarizer", "SIGN_QUANTIZERS", "input_binarizer", "binary_weight", "export",
           "verify", "export_checkpoint", "export_command", "fuse_sign_thresholds",
           "fold_batch_norms"]
