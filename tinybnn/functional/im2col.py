"""im2col and col2im: turning a convolution into a matrix product, and back.

Layout: images are NCHW, x (N, C, H, W); a kernel is kh×kw. With stride s and padding p (per
axis) there are OH = (H + 2·ph − kh) // sh + 1 output rows, and likewise OW columns.

im2col copies every kh×kw patch of the padded image into a column::

    cols[(c, i, j), (n, a, b)] = xpad[n, c, a·sh + i, b·sw + j]        (C·kh·kw, N·OH·OW)

Rows are ordered (c, i, j) like ``weight.reshape(O, -1)`` of a weight (O, C, kh, kw), columns
(n, a, b), so a convolution is one matrix product ``weight.reshape(O, -1) @ cols``. The copy reads a
strided *view* of xpad (:func:`patches`): no Python loop over pixels.

col2im is its adjoint: every column entry is added back onto the pixel it was copied from. That is
the backward pass of im2col (pixels shared by several patches collect several gradients).
"""

from __future__ import annotations

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
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"conv2d_im2col: a {kh}x{kw} kernel does not fit the padded input "
                         f"{h + 2 * ph}x{w + 2 * pw}")
    xp = get_array_module(x)
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    cols[...] = patches(pad_hw(x, ph, pw, pad_value), kh, kw, sh, sw, oh, ow)
    return cols.reshape(c * kh * kw, n * oh * ow), (oh, ow)


def conv2d_col2im(cols, x_shape, kh: int, kw: int, stride=1, padding=0):
    """The adjoint of :func:`conv2d_im2col`: add every column back onto the pixels it came from.

    Args:
        cols: (C·kh·kw, N·OH·OW) as returned by ``conv2d_im2col``.
        x_shape: (N, C, H, W), the shape of the input that was unfolded.
    Returns:
        (N, C, H, W): each input pixel receives the sum of the column entries that copied it (the
        border that padding added is dropped).
    """
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    xp = get_array_module(cols)
    padded_t = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    col2im_add(cols.reshape(c, kh, kw, n, oh, ow), padded_t, sh, sw)
    return xp.ascontiguousarray(padded_t[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


def col2im_add(cols6, out, sh: int, sw: int) -> None:
    """``out[c, n, a·sh + i, b·sw + j] += cols6[c, i, j, n, a, b]`` for every index, in place.

    cols6 (C, kh, kw, N, OH, OW); out (C, N, Hp, Wp), the padded image in channel-major order (the
    same order as the columns, so both sides of every add walk memory alike). On the CPU a compiled
    Numba loop does it in one pass; otherwise one vectorised strided add per kernel offset (kh·kw of
    them, e.g. 9), never a Python loop over pixels.
    """
    xp = get_array_module(cols6)
    kernel = _numba_col2im() if xp.__name__ == "numpy" else None
    if kernel is not None:
        kernel(cols6, out, sh, sw)
        return
    _, kh, kw, _, oh, ow = cols6.shape
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols6[:, i, j]


_col2im_kernel = None


def _numba_col2im():
    """The compiled col2im loop, or None without Numba. Compiled (or loaded from the on-disk
    cache) on first use; it releases the GIL, so threads can run it side by side."""
    global _col2im_kernel
    if _col2im_kernel is None:
        try:
            import numba
        except ImportError:
            _col2im_kernel = False
        else:
            @numba.njit(nogil=True, cache=True)
            def col2im(cols6, out, sh, sw):
                c, kh, kw, n, oh, ow = cols6.shape
                for ci in range(c):
                    for ni in range(n):
                        for i in range(kh):
                            for a in range(oh):
                                row = a * sh + i
                                for j in range(kw):
                                    for b in range(ow):
                                        out[ci, ni, row, b * sw + j] += cols6[ci, i, j, ni, a, b]

            _col2im_kernel = col2im
    return _col2im_kernel or None
