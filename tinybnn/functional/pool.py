"""Pooling: ``max_pool2d``, ``avg_pool2d`` and ``adaptive_avg_pool2d`` (PyTorch semantics).

Shapes: x (N, C, H, W) -> y (N, C, OH, OW), OH = (H + 2·ph − kh) // sh + 1 (and likewise OW);
the stride defaults to the kernel size. A pooling window visits kh·kw offsets (i, j); for each
offset the strided slice ``xpad[:, :, i::sh, j::sw]`` (cut to OH×OW) holds that element of every
window, so both passes are kh·kw vectorised array operations, never a loop over pixels.
"""

from __future__ import annotations

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .im2col import conv_output_size, pad_hw, pair


def _window_slice(i: int, j: int, sh: int, sw: int, oh: int, ow: int):
    """The index of offset (i, j) of every window: picks an (N, C, OH, OW) strided slice."""
    return (slice(None), slice(None), slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw))


def _pool_geometry(x_shape, kernel_size, stride, padding, name: str):
    """Check the arguments and return ((kh, kw), (sh, sw), (ph, pw), (oh, ow))."""
    if len(x_shape) != 4:
        raise ShapeError(f"{name} expects x of shape (N, C, H, W), got {tuple(x_shape)}")
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = pair(kernel_size if stride is None else stride, "stride")
    ph, pw = pair(padding, "padding")
    if min(kh, kw, sh, sw) < 1:
        raise ConfigError(f"{name}: kernel_size and stride must be >= 1, got kernel "
                          f"{(kh, kw)}, stride {(sh, sw)}")
    if ph < 0 or pw < 0 or 2 * ph > kh or 2 * pw > kw:
        raise ConfigError(f"{name}: padding must be between 0 and half the kernel size, got "
                          f"padding {(ph, pw)} for kernel {(kh, kw)}")
    oh = conv_output_size(x_shape[2], kh, sh, ph)
    ow = conv_output_size(x_shape[3], kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ShapeError(f"{name}: a {kh}x{kw} window does not fit the input "
                         f"{x_shape[2]}x{x_shape[3]} (padding {(ph, pw)})")
    return (kh, kw), (sh, sw), (ph, pw), (oh, ow)


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------


class MaxPool2d(Function):
    """y = the maximum of each window; the padding border is −inf (it never wins).

    Backward: the whole gradient of a window goes to its maximum; ties go to the first maximum in
    row-major window order, as in PyTorch.
    """

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), out_size=(1, 1)):
        xp = get_array_module(x)
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_size
        xpad = pad_hw(x, ph, pw, -xp.inf)
        y = xpad[_window_slice(0, 0, sh, sw, oh, ow)].copy()
        winner = xp.zeros(y.shape, dtype=xp.uint8 if kh * kw < 256 else xp.int32)
        for k in range(1, kh * kw):
            candidate = xpad[_window_slice(k // kw, k % kw, sh, sw, oh, ow)]
            better = candidate > y          # strict: an earlier maximum keeps a tie
            xp.copyto(y, candidate, where=better)
            winner[better] = k
        ctx.save_for_backward(winner)
        ctx.geometry = (x.shape, kernel, stride, padding)
        return y

    @staticmethod
    def backward(ctx, grad):
        (winner,) = ctx.saved_tensors
        (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = ctx.geometry
        xp = get_array_module(grad)
        oh, ow = grad.shape[2:]
        dxpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        for k in range(kh * kw):
            dxpad[_window_slice(k // kw, k % kw, sh, sw, oh, ow)] += xp.where(winner == k, grad, 0)
        return dxpad[:, :, ph:ph + h, pw:pw + w]


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Max pooling over kh×kw windows. Shapes: (N, C, H, W) -> (N, C, OH, OW).

    ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the kernel) pads with −inf.
    """
    kernel, stride, padding, out = _pool_geometry(x.shape, kernel_size, stride, padding,
                                                  "max_pool2d")
    return MaxPool2d.apply(x, kernel=kernel, stride=stride, padding=padding, out_size=out)


# ---------------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------------


class AvgPool2d(Function):
    """y = the mean of each window; the padding border holds zeros.

    ``count_include_pad=True`` (PyTorch's default) divides every window by kh·kw; ``False`` divides
    by the number of real pixels in the window. Backward: each pixel of a window gets grad/divisor.
    """

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), out_size=(1, 1),
                count_include_pad=True):
        xp = get_array_module(x)
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_size
        xpad = pad_hw(x, ph, pw, 0.0)
        y = xpad[_window_slice(0, 0, sh, sw, oh, ow)].copy()
        for k in range(1, kh * kw):
            y += xpad[_window_slice(k // kw, k % kw, sh, sw, oh, ow)]
        if count_include_pad or (ph == 0 and pw == 0):
            divisor = float(kh * kw)
        else:  # count the real pixels of each window by pooling an image of ones
            ones = pad_hw(xp.ones((1, 1) + x.shape[2:], dtype=x.dtype), ph, pw, 0.0)
            divisor = sum(ones[_window_slice(k // kw, k % kw, sh, sw, oh, ow)]
                          for k in range(kh * kw))
        y /= divisor
        ctx.divisor = divisor
        ctx.geometry = (x.shape, kernel, stride, padding)
        return y

    @staticmethod
    def backward(ctx, grad):
        (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = ctx.geometry
        xp = get_array_module(grad)
        oh, ow = grad.shape[2:]
        share = grad / ctx.divisor
        if (ph, pw) == (0, 0) and (sh, sw) == (kh, kw) and (h, w) == (oh * kh, ow * kw):
            # the windows tile x exactly (no padding, no overlap, nothing left over): every
            # pixel gets its window's share, one broadcast copy (N, C, OH, kh, OW, kw)
            tiles = share[:, :, :, None, :, None]
            return xp.broadcast_to(tiles, (n, c, oh, kh, ow, kw)).reshape(n, c, h, w)
        dxpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        for k in range(kh * kw):
            dxpad[_window_slice(k // kw, k % kw, sh, sw, oh, ow)] += share
        return dxpad[:, :, ph:ph + h, pw:pw + w]


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0,
               count_include_pad: bool = True) -> Tensor:
    """Average pooling over kh×kw windows. Shapes: (N, C, H, W) -> (N, C, OH, OW).

    ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the kernel) pads with zeros,
    which count in the average unless ``count_include_pad=False`` (PyTorch's default is True).
    """
    kernel, stride, padding, out = _pool_geometry(x.shape, kernel_size, stride, padding,
                                                  "avg_pool2d")
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding, out_size=out,
                           count_include_pad=bool(count_include_pad))


# ---------------------------------------------------------------------------------------------
# Adaptive average pooling
# ---------------------------------------------------------------------------------------------


def _adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's bins: output cell i averages [floor(i·size/out), ceil((i+1)·size/out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


class AdaptiveAvgPool2d(Function):
    """y[..., a, b] = mean of the input bin (a, b); bins as PyTorch's (they may overlap).

    Output (1, 1) is the global average pool of ResNets: y = x.mean over H and W.
    Backward: each pixel of a bin gets grad / (bin size), summed over the bins it belongs to.
    """

    @staticmethod
    def forward(ctx, x, out_size=(1, 1)):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        rows, cols = _adaptive_bins(h, out_size[0]), _adaptive_bins(w, out_size[1])
        y = xp.empty((n, c, len(rows), len(cols)), dtype=x.dtype)
        for a, (h0, h1) in enumerate(rows):
            for b, (w0, w1) in enumerate(cols):
                y[:, :, a, b] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
        ctx.bins = (x.shape, rows, cols)
        return y

    @staticmethod
    def backward(ctx, grad):
        shape, rows, cols = ctx.bins
        xp = get_array_module(grad)
        dx = xp.zeros(shape, dtype=grad.dtype)
        for a, (h0, h1) in enumerate(rows):
            for b, (w0, w1) in enumerate(cols):
                share = grad[:, :, a, b] / ((h1 - h0) * (w1 - w0))
                dx[:, :, h0:h1, w0:w1] += share[:, :, None, None]
        return dx


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size (int or pair). Shapes: (N, C, H, W) -> (N, C, oh, ow).

    ``output_size=1`` is the global average pool. Any size up to the input size works; the bins
    follow PyTorch (equal windows when the size divides the input evenly).
    """
    if len(x.shape) != 4:
        raise ShapeError(f"adaptive_avg_pool2d expects x of shape (N, C, H, W), got "
                         f"{tuple(x.shape)}")
    oh, ow = pair(output_size, "output_size")
    if not (1 <= oh <= x.shape[2] and 1 <= ow <= x.shape[3]):
        raise ConfigError(f"adaptive_avg_pool2d: output size {(oh, ow)} must be between 1 and "
                          f"the input size {tuple(x.shape[2:])}")
    return AdaptiveAvgPool2d.apply(x, out_size=(oh, ow))
