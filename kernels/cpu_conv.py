"""The Numba backend's binary convolution: fused im2col + packing, then the GEMM blocks of
cpu.py with the output stage fused into the kernel.

Data flow for a padded bit map (B, C, Hp, Wp):

1. each image row is packed along the width: ``rows`` (B, C, Hp, ceil(Wp/64)) uint64;
2. ``_im2col_pack_kernel`` cuts every output position's patch out of those rows, ``kw`` bits at
   a time, into ``patches_t`` (W, M): word w of the patch of position m at [w, m]. Word-major,
   so that the loop over the positions of an image row is innermost and contiguous;
3. a conv kernel runs the GEMM blocks of cpu.py (64 positions x 4 output channels) and, while
   the block's dots are in cache, subtracts the zero-padding correction and applies the output
   transform, writing NCHW directly. A block's 64 positions are consecutive in (b, ho, wo), so
   they form a few runs of consecutive positions inside one image ("runs" below), each written
   as one contiguous slice of ``out[b, n]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu import BLOCK_ROWS, COLS, _count_mismatches, _pad_rows
from .pack import _pack_bool_last, n_words


# --------------------------------------------------------------------------------------------
# fused im2col + packing
# --------------------------------------------------------------------------------------------


@njit(inline="always")
def _low_bits(count):
    """A uint64 with the lowest ``count`` bits set (0 < count <= 64)."""
    if count >= 64:
        return ~np.uint64(0)
    return (np.uint64(1) << np.uint64(count)) - np.uint64(1)


@njit(inline="always")
def _read_bits(row, start, count):
    """``count`` (<= 64) bits of a packed row starting at bit ``start``, as the low bits."""
    word = start >> 6
    shift = np.uint64(start & 63)
    value = row[word] >> shift
    if (start & 63) + count > 64:
        value |= row[word + 1] << (np.uint64(64) - shift)
    return value & _low_bits(count)


@njit(parallel=True, cache=True)
def _im2col_pack_kernel(rows, kh, kw, sh, sw, out_h, out_w, patches_t):
    """Fill patches_t (W, B*out_h*out_w), zero on entry, with the packed patches.

    Kernel row i of channel c is the ``kw``-bit piece of input row ho*sh + i that starts at bit
    wo*sw; it goes to patch bits (c*kh + i)*kw onwards - the same place for every position, so
    for each (c, i) one loop over the positions wo of an output row does all the work.
    """
    batch, channels, _, row_words = rows.shape
    mask = _low_bits(kw)
    for image_row in prange(batch * out_h):
        b = image_row // out_h
        ho = image_row - b * out_h
        first = image_row * out_w
        for c in range(channels):
            for i in range(kh):
                row = rows[b, c, ho * sh + i]
                offset = (c * kh + i) * kw                # first patch bit of this piece
                shift = np.uint64(offset & 63)
                low = patches_t[offset >> 6, first:first + out_w]
                spills = (offset & 63) + kw > 64          # piece crosses into the next word
                high = patches_t[(offset >> 6) + spills, first:first + out_w]
                for wo in range(out_w):
                    if row_words == 1:                    # the common case: one-word rows
                        piece = (row[0] >> np.uint64(wo * sw)) & mask
                    else:
                        piece = _read_bits(row, wo * sw, kw)
                    low[wo] |= piece << shift
                    if spills:
                        high[wo] |= piece >> (np.uint64(64) - shift)


def im2col_pack(bits: np.ndarray, kh: int, kw: int, stride) -> np.ndarray:
    """(B, C, Hp, Wp) bool padded bit map -> (ceil(C*kh*kw/64), B*Ho*Wo) uint64 patches, word
    major: column m is the packed patch of output position m = (b, ho, wo), in (c, i, j) order."""
    batch, channels, height, width = bits.shape
    out_h = (height - kh) // stride[0] + 1
    out_w = (width - kw) // stride[1] + 1
    patches_t = np.zeros((n_words(channels * kh * kw), batch * out_h * out_w), dtype=np.uint64)
    _im2col_pack_kernel(_pack_bool_last(bits), kh, kw, stride[0], stride[1], out_h, out_w,
                        patches_t)
    return patches_t


# --------------------------------------------------------------------------------------------
# GEMM blocks with the output stage fused
# --------------------------------------------------------------------------------------------


@njit(inline="always")
def _load_panel_t(patches_t, first, panel):
    """panel (W, 64) = patches_t[:, first:first + 64], zeros past the end; returns real rows."""
    rows = min(BLOCK_ROWS, patches_t.shape[1] - first)
    for w in range(patches_t.shape[0]):
        source = patches_t[w, first:first + rows]
        target = panel[w]
        for m in range(rows):
            target[m] = source[m]
        for m in range(rows, BLOCK_ROWS):
            target[m] = 0
    return rows


@njit(inline="always")
def _block_runs(first, rows, positions, runs):
    """Split block rows first .. first + rows - 1 into runs of consecutive positions of one image.

    runs[r] = (first block row, image, first position, length); returns the number of runs.
    """
    count = 0
    m = 0
    while m < rows:
        image = (first + m) // positions
        p = first + m - image * positions
        length = min(rows - m, positions - p)
        runs[count, 0] = m
        runs[count, 1] = image
        runs[count, 2] = p
        runs[count, 3] = length
        count += 1
        m += length
    return count


@njit(parallel=True, cache=True)
def _conv_dots_kernel(patches_t, b, k, correction, out):
    """out[img, n, p] = k - 2 * popcount(patch(img, p) ^ b[n]) - correction[n, p].

    patches_t (W, B*P), b (N4, W) zero-padded to a multiple of 4 rows, correction (N, P) int32,
    out (B, N, P) int32.
    """
    n_rows = patches_t.shape[1]
    n_cols, positions = correction.shape
    for block in prange((n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        first = block * BLOCK_ROWS
        panel = np.empty((patches_t.shape[0], BLOCK_ROWS), np.uint64)
        acc = np.empty((COLS, BLOCK_ROWS), np.int64)
        runs = np.empty((BLOCK_ROWS, 4), np.int64)
        rows = _load_panel_t(patches_t, first, panel)
        n_runs = _block_runs(first, rows, positions, runs)
        for j in range(0, n_cols, COLS):
            _count_mismatches(panel, b, j, acc)
            for c in range(min(COLS, n_cols - j)):
                n = j + c
                for r in range(n_runs):
                    m0, image, p0, length = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
                    mismatches = acc[c, m0:m0 + length]
                    fix = correction[n, p0:p0 + length]
                    target = out[image, n, p0:p0 + length]
                    for t in range(length):
                        target[t] = k - 2 * mismatches[t] - fix[t]


@njit(parallel=True, cache=True)
def _conv_affine_kernel(patches_t, b, k, correction, scale, bias, out):
    """out[img, n, p] = float32(dot) * scale[n] + bias[n], with dot as in ``_conv_dots_kernel``.

    scale, bias (N,) float32; out (B, N, P) float32.
    """
    n_rows = patches_t.shape[1]
    n_cols, positions = correction.shape
    for block in prange((n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        first = block * BLOCK_ROWS
        panel = np.empty((patches_t.shape[0], BLOCK_ROWS), np.uint64)
        acc = np.empty((COLS, BLOCK_ROWS), np.int64)
        runs = np.empty((BLOCK_ROWS, 4), np.int64)
        rows = _load_panel_t(patches_t, first, panel)
        n_runs = _block_runs(first, rows, positions, runs)
        for j in range(0, n_cols, COLS):
            _count_mismatches(panel, b, j, acc)
            for c in range(min(COLS, n_cols - j)):
                n = j + c
                for r in range(n_runs):
                    m0, image, p0, length = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
                    mismatches = acc[c, m0:m0 + length]
                    fix = correction[n, p0:p0 + length]
                    target = out[image, n, p0:p0 + length]
                    for t in range(length):
                        dot = k - 2 * mismatches[t] - fix[t]
                        target[t] = np.float32(dot) * scale[n] + bias[n]


@njit(parallel=True, cache=True)
def _conv_threshold_kernel(patches_t, b, k, correction, flip, threshold, out):
    """out[img, n, p] = (dot * flip[n] >= threshold[n]), with dot as in ``_conv_dots_kernel``.

    flip (+1 or -1), threshold (N,) int32; out (B, N, P) uint8 of 0/1.
    """
    n_rows = patches_t.shape[1]
    n_cols, positions = correction.shape
    for block in prange((n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        first = block * BLOCK_ROWS
        panel = np.empty((patches_t.shape[0], BLOCK_ROWS), np.uint64)
        acc = np.empty((COLS, BLOCK_ROWS), np.int64)
        runs = np.empty((BLOCK_ROWS, 4), np.int64)
        rows = _load_panel_t(patches_t, first, panel)
        n_runs = _block_runs(first, rows, positions, runs)
        for j in range(0, n_cols, COLS):
            _count_mismatches(panel, b, j, acc)
            for c in range(min(COLS, n_cols - j)):
                n = j + c
                for r in range(n_runs):
                    m0, image, p0, length = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
                    mismatches = acc[c, m0:m0 + length]
                    fix = correction[n, p0:p0 + length]
                    target = out[image, n, p0:p0 + length]
                    for t in range(length):
                        dot = k - 2 * mismatches[t] - fix[t]
                        target[t] = dot * flip[n] >= threshold[n]


def binary_conv2d(bits: np.ndarray, w_packed: np.ndarray, kh: int, kw: int, stride, epilogue):
    """Binary convolution of a padded bit map (B, C, Hp, Wp) bool with packed weights
    (Cout, W); arguments and result as ``reference.binary_conv2d``."""
    batch, channels, height, width = bits.shape
    out_h = (height - kh) // stride[0] + 1
    out_w = (width - kw) // stride[1] + 1
    cout = w_packed.shape[0]
    k = np.int64(channels * kh * kw)
    patches_t = im2col_pack(bits, kh, kw, stride)
    b = _pad_rows(w_packed, COLS)
    correction = np.ascontiguousarray(epilogue.correction.reshape(cout, out_h * out_w),
                                      dtype=np.int32)
    shape = (batch, cout, out_h * out_w)
    if epilogue.kind == "dots":
        out = np.empty(shape, dtype=np.int32)
        _conv_dots_kernel(patches_t, b, k, correction, out)
    elif epilogue.kind == "affine":
        out = np.empty(shape, dtype=np.float32)
        _conv_affine_kernel(patches_t, b, k, correction, epilogue.scale, epilogue.bias, out)
    else:
        out = np.empty(shape, dtype=np.uint8)
        _conv_threshold_kernel(patches_t, b, k, correction, epilogue.flip, epilogue.threshold,
                               out)
        return _pack_bool_last(out.reshape(batch, cout, out_h, out_w).view(bool))
    return out.reshape(batch, cout, out_h, out_w)
