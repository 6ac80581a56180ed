"""Convolution and padding: ``conv2d``, ``pad`` and the im2col helpers behind them.

Layout: images are NCHW, x (N, C, H, W); a convolution weight is (O, C, kh, kw). With stride s and
padding p (per axis), the output has OH = (H + 2·ph − kh) // sh + 1 rows, and likewise OW columns.

How ``conv2d`` computes (the im2col method)::

    xpad  = x padded with ``pad_value``                    (N, C, Hp, Wp)
    cols  = every kh×kw patch of xpad, one per column      (C·kh·kw, N·OH·OW)
    y     = W.reshape(O, C·kh·kw) @ cols                   (O, N·OH·OW) -> (N, O, OH, OW)

``cols`` is a copy of a strided *view* of xpad (no Python loop over pixels), and the product is a
float32 BLAS matrix multiply. The rows of ``cols`` are ordered (c, i, j), like
``W.reshape(O, -1)``; its columns (n, oh, ow), so the long pixel axis is the contiguous one in every
product. The backward pass, with g2 = the output gradient as (O, N·OH·OW)::

    dWᵀ   = cols @ g2ᵀ                                     (C·kh·kw, O)
    dx    = stride 1: a stride-1 convolution of g (padded by k−1−p) with W flipped and its two
            channel axes swapped — im2col and one GEMM again;
            other strides: dcols = Wᵀ g2, then col2im adds every column entry back onto the pixel
            it came from (a compiled Numba loop on the CPU, kh·kw strided adds elsewhere).

The batch is cut into chunks of a few images whose columns (about a megabyte) stay in the CPU cache
between being written and being multiplied; the chunks run on a pool of threads
(:mod:`tinybnn.functional.parallel`). The backward pass rebuilds the columns chunk by chunk instead
of keeping a 9× larger copy of every input alive.
"""

from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .parallel import map_chunks

# Bytes of im2col columns per chunk on the CPU: about a megabyte stays in a core's L2 cache between
# being written and being multiplied; smaller chunks pay more call overhead.
CHUNK_BYTES = 2**20


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair ``(for H, for W)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = (int(value[0]), int(value[1]))
    else:
        pair = (int(value), int(value))
    return pair


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's formula)."""
    return (size + 2 * padding - kernel) // stride + 1


def _chunk_size(xp, n: int, bytes_per_image: int) -> int:
    """How many images to process at a time (all of them on a GPU)."""
    if xp.__name__ != "numpy":
        return n
    return max(1, min(n, CHUNK_BYTES // max(bytes_per_image, 1)))


def _pad_hw(x, ph: int, pw: int, value: float):
    """x (..., H, W) -> (..., H + 2ph, W + 2pw), the border filled with ``value``."""
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    *lead, h, w = x.shape
    out = xp.full((*lead, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[..., ph:ph + h, pw:pw + w] = x
    return out


# ---------------------------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------------------------


def _patches(xpad, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int):
    """The strided view (C, kh, kw, N, OH, OW) of every kh×kw patch of xpad (N, C, Hp, Wp).

    ``view[c, i, j, n, a, b] = xpad[n, c, a·sh + i, b·sw + j]``; no data is copied.
    """
    xp = get_array_module(xpad)
    n, c = xpad.shape[:2]
    s_n, s_c, s_h, s_w = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(c, kh, kw, n, oh, ow),
        strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw))


def _im2col_padded(xpad, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int):
    """Columns of an already padded input: xpad (N, C, Hp, Wp) -> (C·kh·kw, N·OH·OW)."""
    xp = get_array_module(xpad)
    n, c = xpad.shape[:2]
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=xpad.dtype)
    cols[...] = _patches(xpad, kh, kw, sh, sw, oh, ow)
    return cols.reshape(c * kh * kw, n * oh * ow)


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
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    oh = conv_output_size(x.shape[2], kh, sh, ph)
    ow = conv_output_size(x.shape[3], kw, sw, pw)
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"conv2d_im2col: a {kh}x{kw} kernel does not fit the padded input "
                         f"{x.shape[2] + 2 * ph}x{x.shape[3] + 2 * pw}")
    return _im2col_padded(_pad_hw(x, ph, pw, pad_value), kh, kw, sh, sw, oh, ow), (oh, ow)


def conv2d_col2im(cols, x_shape, kh: int, kw: int, stride=1, padding=0):
    """The adjoint of :func:`conv2d_im2col`: add every column back onto the pixels it came from.

    Args:
        cols: (C·kh·kw, N·OH·OW) as returned by ``conv2d_im2col``.
        x_shape: (N, C, H, W), the shape of the input that was unfolded.
    Returns:
        (N, C, H, W): each input pixel receives the sum of the column entries that copied it (the
        border that padding added is dropped).
    """
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    xp = get_array_module(cols)
    padded_t = _col2im_t(cols.reshape(c, kh, kw, n, oh, ow), h + 2 * ph, w + 2 * pw, sh, sw)
    return xp.ascontiguousarray(padded_t[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


def _col2im_t(cols6, hp: int, wp: int, sh: int, sw: int):
    """cols6 (C, kh, kw, N, OH, OW) -> padded image gradient in (C, N, Hp, Wp) order.

    ``out[c, n, a·sh + i, b·sw + j] += cols6[c, i, j, n, a, b]`` for every index: each column entry
    goes back to the pixel it was copied from. On the CPU a compiled Numba loop does this in one
    pass; elsewhere it is one vectorised strided add per kernel offset (kh·kw of them, e.g. 9),
    never a Python loop over pixels.
    """
    xp = get_array_module(cols6)
    c, kh, kw, n, oh, ow = cols6.shape
    out = xp.zeros((c, n, hp, wp), dtype=cols6.dtype)
    kernel = _numba_col2im() if xp.__name__ == "numpy" else None
    if kernel is not None:
        kernel(cols6, out, sh, sw)
        return out
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols6[:, i, j]
    return out


_col2im_kernel = None


def _numba_col2im():
    """The compiled col2im loop (None when Numba is not installed). Compiled on first use."""
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


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------


class Conv2d(Function):
    """2-D cross-correlation (PyTorch's ``conv2d``), by im2col and one GEMM per chunk of images.

    Shapes: x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, OH, OW).
    The border added by ``padding`` holds ``pad_value``; it is a constant, so no gradient flows
    into it (dx covers the real pixels only).
    """

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), pad_value=0.0):
        xp = get_array_module(x, w)
        n, c, h, width = x.shape
        o, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(width, kw, sw, pw)
        w2 = w.reshape(o, c * kh * kw)
        y = xp.empty((n, o, oh, ow), dtype=xp.result_type(x, w))

        def chunk(n0, n1):                                         # images n0..n1−1
            xpad = _pad_hw(x[n0:n1], ph, pw, pad_value)
            cols = _im2col_padded(xpad, kh, kw, sh, sw, oh, ow)   # (C·kh·kw, nb·OH·OW)
            out = w2 @ cols                                       # (O, nb·OH·OW)
            if b is not None:
                out += b[:, None]
            y[n0:n1] = out.reshape(o, n1 - n0, oh, ow).transpose(1, 0, 2, 3)

        step = _chunk_size(xp, n, c * kh * kw * oh * ow * x.itemsize)
        map_chunks(chunk, n, step, on_cpu=xp.__name__ == "numpy")
        ctx.save_for_backward(x, w)
        ctx.options = (stride, padding, pad_value, step)
        ctx.has_bias = b is not None
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        (sh, sw), (ph, pw), pad_value, step = ctx.options
        xp = get_array_module(grad)
        n, c, h, width = x.shape
        o, _, kh, kw = w.shape
        oh, ow = grad.shape[2:]
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]

        w2 = w.reshape(o, c * kh * kw)
        # stride 1 with padding < kernel: dx is itself a stride-1 convolution of the gradient,
        # padded by k−1−p, with the kernel flipped and its two channel axes swapped
        as_conv = (sh, sw) == (1, 1) and ph < kh and pw < kw
        if need_x and as_conv:
            w_flip = xp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            w_flip2 = w_flip.reshape(c, o * kh * kw)
        dx = xp.empty(x.shape, dtype=grad.dtype) if need_x else None

        def chunk(n0, n1):
            nb = n1 - n0
            g_t = xp.ascontiguousarray(grad[n0:n1].transpose(1, 0, 2, 3))   # (O, nb, OH, OW)
            g2 = g_t.reshape(o, nb * oh * ow)
            db = g2.sum(axis=1) if need_b else None
            dw_t = None
            if need_w:                                  # dWᵀ = cols g2ᵀ: (C·kh·kw, O)
                xpad = _pad_hw(x[n0:n1], ph, pw, pad_value)
                dw_t = _im2col_padded(xpad, kh, kw, sh, sw, oh, ow) @ g2.T
            if need_x:
                if as_conv:
                    g_pad = _pad_hw(g_t, kh - 1 - ph, kw - 1 - pw, 0.0)       # (O, nb, ., .)
                    g_cols = _im2col_padded(g_pad.transpose(1, 0, 2, 3), kh, kw, 1, 1, h, width)
                    dx_t = (w_flip2 @ g_cols).reshape(c, nb, h, width)
                else:
                    dcols = (w2.T @ g2).reshape(c, kh, kw, nb, oh, ow)
                    padded = _col2im_t(dcols, h + 2 * ph, width + 2 * pw, sh, sw)
                    dx_t = padded[:, :, ph:ph + h, pw:pw + width]
                dx[n0:n1] = dx_t.transpose(1, 0, 2, 3)
            return dw_t, db

        parts = map_chunks(chunk, n, step, on_cpu=xp.__name__ == "numpy")
        dw = sum(p[0] for p in parts).T.reshape(w.shape) if need_w else None
        db = sum(p[1] for p in parts) if need_b else None
        return dx, dw, db


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           pad_value: float = 0.0) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch's ``F.conv2d``).

    Args:
        x: (N, C, H, W).
        weight: (O, C, kh, kw).
        bias: (O,) or None.
        stride, padding: int or (for H, for W) pair.
        pad_value: the constant the padding border holds (binary convolutions pad their ±1 input
            with 0, +1 or −1). No gradient flows into the border.
    Returns:
        (N, O, OH, OW) with OH = (H + 2·ph − kh) // sh + 1 and likewise OW.
    """
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ConfigError(f"conv2d: stride must be >= 1 and padding >= 0, got stride "
                          f"{(sh, sw)}, padding {(ph, pw)}")
    if len(x.shape) != 4 or len(weight.shape) != 4:
        raise ShapeError(f"conv2d expects x (N, C, H, W) and weight (O, C, kh, kw), got x shape "
                         f"{tuple(x.shape)} and weight shape {tuple(weight.shape)}")
    if x.shape[1] != weight.shape[1]:
        raise ShapeError(f"conv2d: input has {x.shape[1]} channels but the weight expects "
                         f"{weight.shape[1]} (weight shape {tuple(weight.shape)}, input shape "
                         f"{tuple(x.shape)})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ShapeError(f"conv2d: bias has shape {tuple(bias.shape)} but the weight has "
                         f"{weight.shape[0]} output channels")
    kh, kw = weight.shape[2:]
    if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
        raise ShapeError(f"conv2d: a {kh}x{kw} kernel does not fit the padded input "
                         f"{x.shape[2] + 2 * ph}x{x.shape[3] + 2 * pw}; use a smaller kernel or "
                         f"more padding")
    return Conv2d.apply(x, weight, bias, stride=(sh, sw), padding=(ph, pw),
                        pad_value=float(pad_value))


# ---------------------------------------------------------------------------------------------
# pad
# ---------------------------------------------------------------------------------------------


def _pad_widths(padding, ndim: int) -> list[tuple[int, int]]:
    """(before, after) per axis from an int (H and W) or PyTorch's flat tuple (last axis first)."""
    if isinstance(padding, int):
        if ndim < 2:
            raise ShapeError(f"pad with an int pads H and W; the input has only {ndim} axes")
        flat = (padding,) * 4
    else:
        flat = tuple(int(p) for p in padding)
        if len(flat) % 2 or len(flat) // 2 > ndim:
            raise ConfigError(f"pad: padding must have an even length of at most 2·ndim = "
                              f"{2 * ndim}, got {padding!r}")
    widths = [(0, 0)] * ndim
    for k in range(len(flat) // 2):
        widths[ndim - 1 - k] = (flat[2 * k], flat[2 * k + 1])
    return widths


class Pad(Function):
    """Constant padding; negative widths crop (as PyTorch). dx = the gradient of the kept part.

    ``widths`` is one (before, after) pair per axis.
    """

    @staticmethod
    def forward(ctx, x, widths=(), value=0.0):
        xp = get_array_module(x)
        src, dst, shape = [], [], []
        for size, (before, after) in zip(x.shape, widths):
            out = size + before + after
            if out < 0:
                raise ShapeError(f"pad: cropping {-before} + {-after} from an axis of {size}")
            shape.append(out)
            src.append(slice(max(-before, 0), size - max(-after, 0)))
            dst.append(slice(max(before, 0), out - max(after, 0)))
        y = xp.full(shape, value, dtype=x.dtype)
        y[tuple(dst)] = x[tuple(src)]
        ctx.slices = (x.shape, tuple(src), tuple(dst))
        return y

    @staticmethod
    def backward(ctx, grad):
        shape, src, dst = ctx.slices
        xp = get_array_module(grad)
        dx = xp.zeros(shape, dtype=grad.dtype)
        dx[src] = grad[dst]
        return dx


def pad(x: Tensor, padding, value: float = 0.0) -> Tensor:
    """Pad with a constant.

    ``padding`` is either an int, which pads the last two axes (H and W) by that much on every
    side, or PyTorch's ``F.pad`` tuple ``(left, right, top, bottom, front, back, ...)``: pairs for
    the last axis first, then the one before it, and so on. Negative values crop.
    Shape: (..., H, W) -> (..., H + top + bottom, W + left + right).
    """
    return Pad.apply(x, widths=tuple(_pad_widths(padding, len(x.shape))), value=float(value))
