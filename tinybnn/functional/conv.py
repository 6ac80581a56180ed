"""2-D convolution (``conv2d``) and constant padding (``pad``).

Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, OH, OW) with
OH = (H + 2·ph − kh) // sh + 1 and likewise OW (see :mod:`tinybnn.functional.im2col`).

The forward pass is im2col followed by one matrix product::

    cols  = every kh×kw patch of x padded with pad_value      (C·kh·kw, N·OH·OW)
    y     = W2 @ cols,   W2 = W.reshape(O, C·kh·kw)           (O, N·OH·OW) -> (N, O, OH, OW)

and the backward pass is two more. With stride 1 (and padding p < kernel k) dx is a stride-1
convolution of the output gradient g, so both come from the columns of g, padded by k − 1 − p::

    gcols = every kh×kw patch of g padded with zeros          (O·kh·kw, N·H·W)
    dx    = Wb @ gcols,  Wb[c, (o, i, j)] = W[o, c, kh−1−i, kw−1−j]             (C, N·H·W)
    dW    = gcols @ xᵀ,  x as (C, N·H·W), kernel flipped      (O·kh·kw, C)   when pad_value = 0

(dW sums g[n, o, a, b]·x[n, c, a + i − ph, b + j − pw] over the real pixels: right when the border
is zero). Otherwise, with g2 = g as (O, N·OH·OW)::

    dWᵀ   = cols @ g2ᵀ                                        (C·kh·kw, O)
    dx    = col2im(W2ᵀ @ g2): each column entry added back onto its pixel

The long pixel axis is the contiguous one in all the products, so they are plain float32 BLAS
GEMMs. The batch is cut into chunks of a few images whose columns (about a megabyte) stay in the
CPU cache between being written and being multiplied; the chunks run on a pool of threads, each
working in arrays it allocated once (:mod:`tinybnn.functional.parallel`). The backward pass rebuilds
the columns chunk by chunk instead of keeping a 9× larger copy of every input alive; im2col and
col2im are compiled Numba loops that release the GIL (:mod:`tinybnn.functional.im2col`).

A small reduction (C·kh·kw <= 32, e.g. the 3-channel first layer) skips im2col in the forward pass:
a compiled loop computes each output plane directly, term by term, in the same chunks
(:mod:`tinybnn.functional.direct_conv`).
"""

from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .direct_conv import direct_conv_into, uses_direct
from .im2col import (col2im_add, conv2d_col2im, conv2d_im2col, conv_output_size,  # noqa: F401
                     im2col_into, pair)
from .parallel import map_chunks, num_threads, per_thread


# Bytes of im2col columns per chunk on the CPU, at most: they should stay in a core's L2 cache (1 to
# 2 MB on current CPUs) between being written and being multiplied; smaller chunks pay more Python
# overhead per image.
CHUNK_BYTES = 3 * 2**19


# ---------------------------------------------------------------------------------------------
# The work of one chunk of images
# ---------------------------------------------------------------------------------------------


def _dx_is_a_convolution(stride, padding, kh: int, kw: int) -> bool:
    """Stride 1 and padding < kernel: then dx is a stride-1 convolution of the output gradient
    padded by k − 1 − p, with the kernel flipped and its channel axes swapped."""
    return tuple(stride) == (1, 1) and padding[0] < kh and padding[1] < kw


def _dw_from_grad_columns(stride, padding, pad_value, kh: int, kw: int) -> bool:
    """When dx is a convolution and the border is zero, the columns of the padded gradient give dW
    too, with x itself in place of its columns (see :meth:`_Workspace.backward`)."""
    return _dx_is_a_convolution(stride, padding, kh, kw) and (
        pad_value == 0 or tuple(padding) == (0, 0))


def _same_or_new(xp, array, shape, dtype):
    """``array`` itself when it has this shape (two steps that never overlap share memory, which
    keeps more of it in the cache), else a new array."""
    return array if array.shape == tuple(shape) else xp.empty(shape, dtype=dtype)


class _Workspace:
    """The arrays one thread needs for a chunk of ``nb`` images of one convolution, made once,
    with the views of them each step uses. Each method is one step of the forward or backward
    pass and is a handful of array operations, nothing else.

    Forward arrays: cols6 (C, kh, kw, nb, OH, OW), the columns of x; out (O, nb·OH·OW).
    Backward arrays (made on first use): when dx is a convolution, g_cols6 (O, kh, kw, nb, H, W),
    the columns of the gradient padded by k − 1 − p, and dx_out (C, nb·H·W); x_t (C, nb, H, W),
    x channel-major, when dW comes from the gradient's columns; otherwise g_t (O, nb, OH, OW), the
    gradient channel-major, and for dx dcols (C·kh·kw, nb·OH·OW), the gradient of the columns.
    """

    def __init__(self, xp, dtype, nb, x_shape, w_shape, stride, padding, pad_value):
        c, h, w = x_shape[1:]
        o, _, kh, kw = w_shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        self.xp, self.dtype, self.sizes = xp, dtype, (nb, c, h, w, o, kh, kw, oh, ow)
        self.stride, self.padding, self.pad_value = stride, padding, pad_value
        self.cols6 = xp.empty((c, kh, kw, nb, oh, ow), dtype=dtype)
        self.cols = self.cols6.reshape(c * kh * kw, nb * oh * ow)
        self.out = xp.empty((o, nb * oh * ow), dtype=dtype)
        self.out_nchw = self.out.reshape(o, nb, oh, ow).transpose(1, 0, 2, 3)
        self.as_convolution = _dx_is_a_convolution(stride, padding, kh, kw)
        self.dw_from_grad_columns = _dw_from_grad_columns(stride, padding, pad_value, kh, kw)
        self.backward_ready = False

    # -- forward ----------------------------------------------------------------------------
    def unfold_x(self, x_chunk):
        """cols = im2col(x_chunk) (C·kh·kw, nb·OH·OW)."""
        im2col_into(x_chunk, self.cols6, self.stride, self.padding, self.pad_value)
        return self.cols

    def forward(self, x_chunk, w2, b, y_chunk):
        """y_chunk (nb, O, OH, OW) = conv(x_chunk) = W2 @ cols (+ b)."""
        self.xp.matmul(w2, self.unfold_x(x_chunk), out=self.out)
        if b is not None:
            self.out += b[:, None]
        y_chunk[...] = self.out_nchw

    # -- backward ---------------------------------------------------------------------------
    def backward(self, x_chunk, g_chunk, w_back, dx_chunk, need_w: bool):
        """Fill dx_chunk (nb, C, H, W) unless it is None; return this chunk's share of dW (None
        when not needed): (O·kh·kw, C) with the kernel flipped when ``dw_from_grad_columns``,
        else dWᵀ (C·kh·kw, O). ``w_back`` is Wb (C, O·kh·kw) when dx is a convolution, else W2
        (O, C·kh·kw); g_chunk is the output gradient (nb, O, OH, OW)."""
        if not self.backward_ready:
            self._make_backward_arrays()
        need_x = dx_chunk is not None
        dw_from_g_cols = need_w and self.dw_from_grad_columns
        g_cols = g2 = None
        if self.as_convolution and (need_x or dw_from_g_cols):
            g_cols = self.unfold_grad(g_chunk)
        if not self.as_convolution or (need_w and not dw_from_g_cols):
            g2 = self.take_grad(g_chunk)
        if need_x and self.as_convolution:                      # dx = Wb @ gcols
            self.xp.matmul(w_back, g_cols, out=self.dx_out)
            dx_chunk[...] = self.dx_nchw
        elif need_x:                                            # dx = col2im(W2ᵀ @ g2)
            self.xp.matmul(w_back.T, g2, out=self.dcols)
            dx_chunk[...] = 0
            col2im_add(self.dcols6, dx_chunk, self.stride, self.padding)
        if dw_from_g_cols:                                      # gcols @ xᵀ
            self.x_t[...] = x_chunk.transpose(1, 0, 2, 3)
            return g_cols @ self.x_t.reshape(self.x_t.shape[0], -1).T
        return self.unfold_x(x_chunk) @ g2.T if need_w else None  # dWᵀ = cols @ g2ᵀ

    def unfold_grad(self, g_chunk):
        """The columns (O·kh·kw, nb·H·W) of g_chunk (nb, O, OH, OW) padded by k − 1 − p with zeros."""
        _, _, _, _, _, kh, kw, _, _ = self.sizes
        ph, pw = self.padding
        im2col_into(g_chunk, self.g_cols6, (1, 1), (kh - 1 - ph, kw - 1 - pw), 0.0)
        return self.g_cols

    def take_grad(self, g_chunk):
        """Copy the output gradient (nb, O, OH, OW) channel-major; return it as g2 (O, nb·OH·OW)."""
        nb, c, h, w, o, kh, kw, oh, ow = self.sizes
        self.g_t[...] = g_chunk.transpose(1, 0, 2, 3)
        return self.g_t.reshape(o, nb * oh * ow)

    def _make_backward_arrays(self):
        xp, dtype = self.xp, self.dtype
        nb, c, h, w, o, kh, kw, oh, ow = self.sizes
        if self.as_convolution:
            self.g_cols6 = _same_or_new(xp, self.cols6, (o, kh, kw, nb, h, w), dtype)
            self.g_cols = self.g_cols6.reshape(o * kh * kw, nb * h * w)
            self.dx_out = _same_or_new(xp, self.out, (c, nb * h * w), dtype)
            self.dx_nchw = self.dx_out.reshape(c, nb, h, w).transpose(1, 0, 2, 3)
        else:
            self.dcols = xp.empty((c * kh * kw, nb * oh * ow), dtype=dtype)
            self.dcols6 = self.dcols.reshape(c, kh, kw, nb, oh, ow)
        if self.dw_from_grad_columns:
            self.x_t = xp.empty((c, nb, h, w), dtype=dtype)
        else:
            self.g_t = xp.empty((o, nb, oh, ow), dtype=dtype)
        self.backward_ready = True


def _workspace(xp, dtype, nb, x_shape, w_shape, stride, padding, pad_value) -> _Workspace:
    """This thread's workspace for the chunk shape (a fresh one on a GPU, where there is a single
    chunk and nothing to gain from keeping it)."""
    args = (xp, dtype, nb, x_shape, w_shape, stride, padding, pad_value)
    if xp.__name__ != "numpy":
        return _Workspace(*args)
    key = ("conv2d", xp.dtype(dtype).str, nb, tuple(x_shape[1:]), tuple(w_shape), stride,
           padding, pad_value)
    return per_thread(key, lambda: _Workspace(*args))


def _chunk_size(xp, n: int, bytes_per_image: int) -> int:
    """How many images a chunk holds (all of them on a GPU): at most CHUNK_BYTES of columns, and
    of those sizes the one that deals the batch out most evenly over the threads (with 128 images,
    2 threads and room for 10, chunks of 8: 16 chunks, 8 for each thread, not 7 against 6)."""
    if xp.__name__ != "numpy":
        return n
    largest = max(1, min(n, CHUNK_BYTES // max(bytes_per_image, 1)))
    threads = num_threads()

    def busiest_thread(step):                   # images of the thread with the most chunks
        chunks = -(-n // step)
        return -(-chunks // threads) * step

    return min(range(largest, 0, -1), key=busiest_thread)


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------


class Conv2d(Function):
    """2-D cross-correlation (PyTorch's ``conv2d``), by im2col and one GEMM per chunk of images
    (the forward pass of a small reduction by the direct loop instead).

    Shapes: x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, OH, OW).
    The border added by ``padding`` holds ``pad_value``; it is a constant, so no gradient flows
    into it (dx covers the real pixels only).
    """

    new_grad_arrays = True          # dx, dW and db are allocated by backward and kept nowhere

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), pad_value=0.0):
        xp = get_array_module(x, w)
        n, c, h, width = x.shape
        o, _, kh, kw = w.shape
        oh = conv_output_size(h, kh, stride[0], padding[0])
        ow = conv_output_size(width, kw, stride[1], padding[1])
        dtype = xp.result_type(x, w)
        y = xp.empty((n, o, oh, ow), dtype=dtype)
        w2 = w.reshape(o, c * kh * kw)
        step = _chunk_size(xp, n, c * kh * kw * oh * ow * xp.dtype(dtype).itemsize)
        geometry = (x.shape, w.shape, stride, padding, pad_value)
        direct = uses_direct(xp, c, kh, kw, stride, oh * ow)

        def chunk(n0, n1):                                         # images n0 .. n1 − 1
            if direct:
                direct_conv_into(x[n0:n1], w, b, y[n0:n1], stride, padding, pad_value)
            else:
                _workspace(xp, dtype, n1 - n0, *geometry).forward(x[n0:n1], w2, b, y[n0:n1])

        map_chunks(chunk, n, step, on_cpu=xp.__name__ == "numpy")
        ctx.save_for_backward(x, w)
        ctx.geometry, ctx.step, ctx.has_bias = geometry, step, b is not None
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        xp = get_array_module(grad)
        n, c = x.shape[:2]
        o, _, kh, kw = w.shape
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        dtype = xp.result_type(x, w)
        stride, padding, pad_value = ctx.geometry[2:]
        if _dx_is_a_convolution(stride, padding, kh, kw):
            # w_back[c, o, i, j] = w[o, c, kh − 1 − i, kw − 1 − j], as (C, O·kh·kw)
            w_back = xp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            w_back = w_back.reshape(c, o * kh * kw)
        else:
            w_back = w.reshape(o, c * kh * kw)
        dx = xp.empty(x.shape, dtype=grad.dtype) if need_x else None

        def chunk(n0, n1):
            ws = _workspace(xp, dtype, n1 - n0, *ctx.geometry)
            dw_part = ws.backward(x[n0:n1], grad[n0:n1], w_back, dx[n0:n1] if need_x else None,
                                  need_w)
            return dw_part, grad[n0:n1].sum(axis=(0, 2, 3)) if need_b else None

        parts = map_chunks(chunk, n, ctx.step, on_cpu=xp.__name__ == "numpy")
        dw = db = None
        if need_w:
            dw = sum(p[0] for p in parts)
            if _dw_from_grad_columns(stride, padding, pad_value, kh, kw):
                # (O, kh, kw, C) with the kernel flipped -> (O, C, kh, kw)
                dw = dw.reshape(o, kh, kw, c)[:, ::-1, ::-1].transpose(0, 3, 1, 2)
            else:
                dw = dw.T.reshape(w.shape)                          # (C·kh·kw, O) -> (O, C, kh, kw)
            dw = xp.ascontiguousarray(dw)
        if need_b:
            db = sum(p[1] for p in parts)
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
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
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
