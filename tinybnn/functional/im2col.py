"""im2col and col2im: turning a convolution into a matrix product, and back.

Layout: images are NCHW, x (N, C, H, W); a kernel is kh×kw. With stride s and padding p (per
axis) there are OH = (H + 2·ph − kh) // sh + 1 output rows, and likewise OW columns.

im2col copies every kh×kw patch of the padded image into a column::

    cols[(c, i, j), (n, a, b)] = xpad[n, c, a·sh + i, b·sw + j]        (C·kh·kw, N·OH·OW)

Rows are ordered (c, i, j) like ``weight.reshape(O, -1)`` of a weight (O, C, kh, kw), columns
(n, a, b), so a convolution is one matrix product ``weight.reshape(O, -1) @ cols``. On the CPU a
compiled Numba loop writes the columns straight from x, the border as pad_value, without making the
padded copy; elsewhere (CuPy, or without Numba) the copy reads a strided *view* of xpad
(:func:`patches`). Either way there is no Python loop over pixels.

col2im is its adjoint: every column entry is added back onto the pixel it was copied from. That is
the backward pass of im2col (pixels shared by several patches collect several gradients).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError


def pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair ``(for H, for W)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's formula)."""
    return (size + 2 * padding - kernel) // stride + 1


def pad_hw(x, ph: int, pw: int, value: float):
    """x (..., H, W) -> (..., H + 2ph, W + 2pw), the border filled with ``value`` (no copy when
    there is no padding)."""
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    *lead, h, w = x.shape
    out = xp.full((*lead, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[..., ph:ph + h, pw:pw + w] = x
    return out


def patches(xpad, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int):
    """The strided view (C, kh, kw, N, OH, OW) of every kh×kw patch of xpad (N, C, Hp, Wp).

    ``view[c, i, j, n, a, b] = xpad[n, c, a·sh + i, b·sw + j]``; no data is copied. xpad may be any
    view with those axes (e.g. a transposed array): its own strides are used.
    """
    xp = get_array_module(xpad)
    n, c = xpad.shape[:2]
    s_n, s_c, s_h, s_w = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(c, kh, kw, n, oh, ow),
        strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw))


def im2col_into(x, cols6, stride, padding, pad_value: float) -> None:
    """``cols6[c, i, j, n, a, b] = xpad[n, c, a·sh + i, b·sw + j]``: every kh×kw patch of x, padded
    with ``pad_value``, written into cols6 in place.

    x (N, C, H, W), cols6 (C, kh, kw, N, OH, OW); stride and padding are (for H, for W) pairs. On the
    CPU a compiled Numba loop reads x directly (no padded copy) and releases the GIL, so threads can
    run it side by side; otherwise one copy of the strided view :func:`patches` of a padded copy.
    """
    (sh, sw), (ph, pw) = stride, padding
    xp = get_array_module(x)
    kernel = _compiled(_im2col_loops) if xp.__name__ == "numpy" else None
    if kernel is not None:
        kernel(xp.ascontiguousarray(x), cols6, sh, sw, ph, pw, pad_value)
        return
    _, kh, kw, _, oh, ow = cols6.shape
    cols6[...] = patches(pad_hw(x, ph, pw, pad_value), kh, kw, sh, sw, oh, ow)


def conv2d_im2col(x, kh: int, kw: int, stride=1, padding=0, pad_value: float = 0.0):
    """Unfold every kh×kw patch of ``x`` into a column (the im2col transform), on arrays.

    Args:
        x: array (N, C, H, W) (NumPy or CuPy), not a Tensor.
        kh, kw: kernel height and width.
        stride, padding: int or (for H, for W) pair.
        pad_value: the constant the border is filled with (0, or ±1 for binary convolutions).
    Returns:
        ``(cols, (OH, OW))`` with cols (C·kh·kw, N·OH·OW): rows ordered (c, i, j) like
        ``weight.reshape(O, -1)``, columns ordered (n, oh, ow). So a convolution is
        ``(weight.reshape(O, -1) @ cols).reshape(O, N, OH, OW).transpose(1, 0, 2, 3)``, and
        ``cols.T`` (a free view) holds one flattened patch per output pixel.
    """
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    n, c, h, w = x.shape
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"conv2d_im2col: a {kh}x{kw} kernel does not fit the padded input "
                         f"{h + 2 * padding[0]}x{w + 2 * padding[1]}")
    xp = get_array_module(x)
    cols6 = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    im2col_into(x, cols6, stride, padding, pad_value)
    return cols6.reshape(c * kh * kw, n * oh * ow), (oh, ow)


def conv2d_col2im(cols, x_shape, kh: int, kw: int, stride=1, padding=0):
    """The adjoint of :func:`conv2d_im2col`: add every column back onto the pixels it came from.

    Args:
        cols: (C·kh·kw, N·OH·OW) as returned by ``conv2d_im2col``.
        x_shape: (N, C, H, W), the shape of the input that was unfolded.
    Returns:
        (N, C, H, W): each input pixel receives the sum of the column entries that copied it (the
        border that padding added is dropped).
    """
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    n, c, h, w = x_shape
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    xp = get_array_module(cols)
    x = xp.zeros(x_shape, dtype=cols.dtype)
    col2im_add(cols.reshape(c, kh, kw, n, oh, ow), x, stride, padding)
    return x


def col2im_add(cols6, x, stride, padding) -> None:
    """``x[n, c, a·sh + i − ph, b·sw + j − pw] += cols6[c, i, j, n, a, b]`` for every index that
    lands inside x (the border is dropped), in place: the adjoint of :func:`im2col_into`.

    cols6 (C, kh, kw, N, OH, OW), x (N, C, H, W). On the CPU a compiled Numba loop does it in one
    pass (x must then be C-contiguous); otherwise one vectorised strided add per kernel offset (kh·kw
    of them, e.g. 9) into a zero-padded channel-major copy, never a Python loop over pixels.
    """
    (sh, sw), (ph, pw) = stride, padding
    xp = get_array_module(cols6)
    kernel = _compiled(_col2im_loops) if xp.__name__ == "numpy" else None
    if kernel is not None:
        kernel(cols6, x, sh, sw, ph, pw)
        return
    c, kh, kw, n, oh, ow = cols6.shape
    h, w = x.shape[2:]
    padded = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols6[:, i, j]
    x += padded[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)


# ---------------------------------------------------------------------------------------------
# The compiled loops (Numba). They index with unsigned integers: Numba then leaves out its check
# for negative (from-the-end) indices, which would otherwise keep LLVM from vectorising the copies.
# ---------------------------------------------------------------------------------------------

_kernels: dict = {}


def _compiled(loops, **options):
    """``loops`` compiled by Numba (releasing the GIL, cached on disk, plus any other ``njit``
    options), or None without Numba. Compiled, or loaded from the cache, on first use."""
    if loops not in _kernels:
        try:
            import numba
        except ImportError:
            _kernels[loops] = None
        else:
            _kernels[loops] = numba.njit(nogil=True, cache=True, **options)(loops)
    return _kernels[loops]


def _im2col_loops(x, cols6, sh, sw, ph, pw, pad_value):
    """The loops of :func:`im2col_into`; x (N, C, H, W) and cols6 (C, kh, kw, N, OH, OW) are
    C-contiguous, and both are walked as flat arrays.

    Each (c, i, j, n) fills one (OH, OW) plane of cols6: the pixels (a, b) with a0 <= a < a1 and
    b0 <= b < b1 read inside the image, the others get pad_value. With stride 1 and OW = W (a
    "same" convolution) consecutive rows of the plane are consecutive in the image too, so the
    inside is one long run (its spill into the side columns is overwritten with pad_value after);
    otherwise the plane is filled row by row.
    """
    c, kh, kw, n, oh, ow = cols6.shape
    h, w = x.shape[2], x.shape[3]
    src, dst = x.reshape(-1), cols6.reshape(-1)
    one_run = sh == 1 and sw == 1 and ow == w
    start = 0                                               # dst index of the plane's (0, 0)
    for ci in range(c):
        for i in range(kh):
            a0 = min(oh, max(0, (ph - i + sh - 1) // sh))     # first a with a·sh + i − ph >= 0
            a1 = max(a0, min(oh, (h - 1 + ph - i) // sh + 1))  # past the last one < h
            for j in range(kw):
                b0 = min(ow, max(0, (pw - j + sw - 1) // sw))
                b1 = max(b0, min(ow, (w - 1 + pw - j) // sw + 1))
                for ni in range(n):
                    origin = ((ni * c + ci) * h + i - ph) * w + j - pw    # src index of (0, 0)
                    if one_run and b1 > b0:
                        for t in range(a0 * ow + b0, (a1 - 1) * ow + b1):
                            dst[np.uint64(start + t)] = src[np.uint64(origin + t)]
                        for t in range(start, start + a0 * ow):
                            dst[np.uint64(t)] = pad_value
                        for a in range(a0, a1):
                            row = start + a * ow
                            for t in range(row, row + b0):
                                dst[np.uint64(t)] = pad_value
                            for t in range(row + b1, row + ow):
                                dst[np.uint64(t)] = pad_value
                        for t in range(start + a1 * ow, start + oh * ow):
                            dst[np.uint64(t)] = pad_value
                    else:
                        for a in range(oh):
                            row, src_row = start + a * ow, origin + a * sh * w
                            if a < a0 or a >= a1:
                                for b in range(ow):
                                    dst[np.uint64(row + b)] = pad_value
                                continue
                            for b in range(b0):
                                dst[np.uint64(row + b)] = pad_value
                            if sw == 1:
                                for b in range(b0, b1):
                                    dst[np.uint64(row + b)] = src[np.uint64(src_row + b)]
                            else:
                                for b in range(b0, b1):
                                    dst[np.uint64(row + b)] = src[np.uint64(src_row + b * sw)]
                            for b in range(b1, ow):
                                dst[np.uint64(row + b)] = pad_value
                    start += oh * ow


def _col2im_loops(cols6, x, sh, sw, ph, pw):
    """The loops of :func:`col2im_add`, those of :func:`_im2col_loops` run backwards: each entry
    of the inside of a plane is added onto its pixel. cols6 and x are C-contiguous."""
    c, kh, kw, n, oh, ow = cols6.shape
    h, w = x.shape[2], x.shape[3]
    src, dst = cols6.reshape(-1), x.reshape(-1)
    start = 0                                               # src index of the plane's (0, 0)
    for ci in range(c):
        for i in range(kh):
            a0 = min(oh, max(0, (ph - i + sh - 1) // sh))
            a1 = max(a0, min(oh, (h - 1 + ph - i) // sh + 1))
            for j in range(kw):
                b0 = min(ow, max(0, (pw - j + sw - 1) // sw))
                b1 = max(b0, min(ow, (w - 1 + pw - j) // sw + 1))
                for ni in range(n):
                    origin = ((ni * c + ci) * h + i - ph) * w + j - pw    # dst index of (0, 0)
                    for a in range(a0, a1):
                        row, dst_row = start + a * ow, origin + a * sh * w
                        for b in range(b0, b1):
                            dst[np.uint64(dst_row + b * sw)] += src[np.uint64(row + b)]
                    start += oh * ow
