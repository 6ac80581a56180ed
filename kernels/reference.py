"""The NumPy backend: the readable reference every faster kernel is tested against.

Nothing here is clever. ``xnor_gemm`` counts mismatching bits with ``np.bitwise_count`` on the
XOR of every pair of rows; the convolution unrolls the padded bit map into patches (im2col) with
``sliding_window_view``, packs them and calls the same GEMM. The output stages (pad-0 correction,
scale + bias, threshold) are in ``conv_epilogue`` and shared with the other backends' tests.
"""

from __future__ import annotations

import numpy as np

from .pack import pack_bits

#: rows of ``a`` per step of the reference GEMM (bounds the (rows, N, W) temporary)
_CHUNK_ELEMENTS = 1 << 22


def xnor_gemm(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """dot[m, n] = k - 2 * popcount(a[m] XOR b[n]).

    Args:
        a: (M, W) uint64, rows packed along the reduction axis.
        b: (N, W) uint64, packed the same way.
        k: the true reduction length (W == ceil(k / 64)).

    Returns:
        (M, N) int32 dot products of the ±1 vectors.
    """
    m, n, words = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((m, n), dtype=np.int32)
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * words))
    for start in range(0, m, rows):
        chunk = a[start:start + rows]
        mismatches = np.bitwise_count(chunk[:, None, :] ^ b[None, :, :]).sum(axis=-1,
                                                                            dtype=np.int64)
        out[start:start + rows] = k - 2 * mismatches
    return out


def im2col_bits(bits: np.ndarray, kh: int, kw: int, stride: tuple[int, int]) -> np.ndarray:
    """The packed patches of a padded bit map, one row per output position.

    Args:
        bits: (B, C, Hp, Wp) bool, the binarized input with its padding already in place.
        kh, kw: kernel size; stride: (sh, sw).

    Returns:
        (B * Ho * Wo, ceil(C*kh*kw / 64)) uint64; row (b, ho, wo) holds the patch in (c, i, j)
        order, the order of a PyTorch weight ``w.reshape(Cout, -1)``.
    """
    sh, sw = stride
    windows = np.lib.stride_tricks.sliding_window_view(bits, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw]                  # (B, C, Ho, Wo, kh, kw)
    batch, channels, out_h, out_w = windows.shape[:4]
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(batch * out_h * out_w, -1)
    return pack_bits(patches, axis=-1)


def binary_conv2d(bits: np.ndarray, w_packed: np.ndarray, kh: int, kw: int, stride, epilogue):
    """Binary convolution of a padded bit map: im2col + pack, GEMM, output stage.

    Args:
        bits: (B, C, Hp, Wp) bool, binarized input with its padding in place.
        w_packed: (Cout, ceil(C*kh*kw / 64)) uint64 packed weights.
        epilogue: an ``Epilogue`` (see conv.py): pad-0 correction and output transform.

    Returns:
        the epilogue's output, (B, Cout, Ho, Wo) int32 / float32 or packed bits.
    """
    batch, channels, height, width = bits.shape
    out_h = (height - kh) // stride[0] + 1
    out_w = (width - kw) // stride[1] + 1
    dots = xnor_gemm(im2col_bits(bits, kh, kw, stride), w_packed, channels * kh * kw)
    dots = dots.reshape(batch, out_h, out_w, -1).transpose(0, 3, 1, 2)
    return conv_epilogue(dots, epilogue)


def conv_epilogue(dots: np.ndarray, epilogue) -> np.ndarray:
    """Apply the output stage to raw dot products.

    Args:
        dots: (B, Cout, Ho, Wo) integer dots of the packed operands (padding bits as packed).
        epilogue: ``Epilogue`` with ``correction`` (Cout, Ho, Wo) int32 and the transform.

    Returns:
        int32 dots, float32 ``dot * scale + bias``, or uint64 bits packed along the width.
    """
    dot = dots.astype(np.int32) - epilogue.correction[None]
    if epilogue.kind == "dots":
        return dot
    channel = (slice(None), None, None)
    if epilogue.kind == "affine":
        return dot.astype(np.float32) * epilogue.scale[channel] + epilogue.bias[channel]
    bits = dot * epilogue.flip[channel] >= epilogue.threshold[channel]
    return pack_bits(bits, axis=-1)
