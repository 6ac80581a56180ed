"""The Numba backend's binary convolution: one parallel kernel per call that binarizes, pads and
packs the input, cuts the packed patches (im2col) and runs the GEMM blocks of cpu.py with the
output stage fused in.

Work is split into items: an item is one image and a band of ``band_h`` consecutive output rows
(the whole image for CIFAR-sized maps at batch sizes that keep every core busy; thinner bands
for small batches). ``prange`` spreads the items over the cores and each item does, in its own
small buffers (cache resident, nothing of the size of the batch is allocated or re-read):

1. **rows**: the input rows the band reads, binarized (bit = ``x >= 0``, sign(0) = +1), padded
   and packed along the width, (C, band input rows, ceil(Wp/64)) uint64 with Wp = W + 2*pw.
   Padded row r, bit p is input pixel (r - ph, p - pw): word p // 64, bit p % 64, little-endian
   as everywhere (pack.py). Border bits are the pad bit (``pad_value >= 0``: a zero border is
   packed as +1 and corrected after the GEMM, see conv.py); bits past Wp are 0. An input that
   is packed already (a previous layer's sign bits) only has its rows shifted into place;
2. **patches**: (ceil(C*kh*kw/64), band positions) uint64, word-major: word w of the patch of
   band position m at [w, m], patch bits in (c, i, j) order, the order of
   ``w.reshape(Cout, -1)``. Kernel row i of channel c is a ``kw``-bit piece of one packed row
   and lands at patch bits (c*kh + i)*kw onwards, so one loop over the positions of an output
   row moves it for all of them; bits past C*kh*kw are 0, as in the packed weights;
3. **GEMM + output**: the patches are the GEMM's panel as they are (their columns padded with
   zero patches to a multiple of 64): ``_count_mismatches`` counts the mismatches of all the
   item's positions with 4 output channels per pass, into ``acc`` (4, positions) int32 (in
   L1/L2 cache). Then, per channel, one loop over all the item's positions subtracts the
   zero-padding correction and applies the output transform (for the float output, with the
   float tail of ``conv.FloatTail``: a residual unit's batch norm, shortcut and clip; a pooled
   shortcut is pooled once per item), writing a contiguous slice of ``out[b, n]`` (NCHW
   directly: a band's positions are consecutive in (ho, wo)) and, when asked, the sign bits
   of those values as the packed rows of the next layer's input (one vector compare per 64
   values). Long loops matter here: per block of 64 positions the same work ran 10-15%
   slower (measured on ResNet-20's layers, batch 256).

One kernel serves the three output kinds (the branch is taken per channel of an item) and it is
compiled for three input types: float32 (``cut`` 0.0), a bool map viewed as uint8 (``cut`` 1)
and packed uint64 rows; other dtypes are turned into a bool map first.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from .cpu import COLS, _count_mismatches, _pad_rows
from .pack import _pack_bool_last, n_words

#: output kinds of ``_conv_kernel``
DOTS, AFFINE, THRESHOLD = 0, 1, 2
#: an item covers at most about this many output positions (when there are enough items)
ITEM_POSITIONS = 1024


# --------------------------------------------------------------------------------------------
# bit helpers
# --------------------------------------------------------------------------------------------


@intrinsic
def _sign_mask_64(typingctx, values):
    """_sign_mask_64(values) -> uint64 with bit t = ``values[t] >= 0`` for t < 64, of a
    contiguous 1-D float32 array of at least 64 values (sign(0) = +1, NaN gives 0): one vector
    compare whose 64 result bits are the word (``vcmpps`` into mask registers on AVX-512)."""
    if not (isinstance(values, types.Array) and values.dtype == types.float32
            and values.ndim == 1 and values.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        vector = ir.VectorType(ir.FloatType(), 64)
        loaded = builder.load(builder.bitcast(array.data, vector.as_pointer()), align=4)
        positive = builder.fcmp_ordered(">=", loaded, ir.Constant(vector, None))
        return builder.bitcast(positive, ir.IntType(64))

    return types.uint64(values), codegen


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


# --------------------------------------------------------------------------------------------
# steps 1 and 2 of an item: packed rows, then packed patches
# --------------------------------------------------------------------------------------------


@njit(inline="always")
def _pack_word(values, cut):
    """The bits ``values[j] >= cut`` at bit j of one word (len(values) <= 64)."""
    word = np.uint64(0)
    for j in range(values.shape[0]):
        word |= np.uint64(1 if values[j] >= cut else 0) << np.uint64(j)
    return word


@njit(inline="always")
def _pack_row(source, cut, width, pw, edge, target):
    """target (words,) = the padded row of the real or 0/1 values ``source`` (W,), binarized
    (``source >= cut``) and packed: the border bits of ``edge``, pixel j at bit j + pw."""
    pixels = source.shape[0]                               # (``width`` is for packed rows)
    if target.shape[0] == 1:                               # the common case: Wp <= 64
        target[0] = edge[0] | (_pack_word(source, cut) << np.uint64(pw))
        return
    for w in range(target.shape[0]):
        target[w] = edge[w]
    for start in range(0, pixels, 64):                     # 64 pixels -> one word, then placed
        count = min(64, pixels - start)
        word = _pack_word(source[start:start + count], cut)
        p = start + pw                                     # its first bit in the padded row
        shift = np.uint64(p & 63)
        target[p >> 6] |= word << shift
        if (p & 63) + count > 64:                          # crosses into the next word
            target[(p >> 6) + 1] |= word >> (np.uint64(64) - shift)


@njit(inline="always")
def _shift_row(source, cut, width, pw, edge, target):
    """``_pack_row`` for a row that is packed already: source (ceil(width/64),) uint64, bit =
    sign, moved ``pw`` bits up (bits past ``width`` cleared) and OR-ed with ``edge``."""
    in_words, row_words = source.shape[0], target.shape[0]
    last = _low_bits(width - 64 * (in_words - 1))          # the real bits of the last word
    skip, shift = pw >> 6, np.uint64(pw & 63)
    if row_words == 1:                                     # the common case: Wp <= 64
        target[0] = edge[0] | ((source[0] & last) << shift)
        return
    for w in range(row_words):
        target[w] = edge[w]
    for w in range(in_words):
        word = source[w] & last if w == in_words - 1 else source[w]
        target[w + skip] |= word << shift
        if shift and w + skip + 1 < row_words:             # crosses into the next word
            target[w + skip + 1] |= word >> (np.uint64(64) - shift)


def _place_row(source, cut, width, pw, edge, target):
    """One padded, packed row from one input row: ``_pack_row`` for real or 0/1 values,
    ``_shift_row`` for packed uint64 words. Compiled per input type (overload)."""


@overload(_place_row, inline="always")
def _place_row_for(source, cut, width, pw, edge, target):
    if source.dtype == types.uint64:
        def shift_words(source, cut, width, pw, edge, target):
            _shift_row(source, cut, width, pw, edge, target)
        return shift_words

    def pack_values(source, cut, width, pw, edge, target):
        _pack_row(source, cut, width, pw, edge, target)
    return pack_values


@njit(inline="always")
def _band_rows(x, cut, width, image, first_row, ph, pw, edge, full, rows):
    """rows[c, t] = padded row ``first_row + t`` of channel c of ``image``, binarized and packed.

    x (B, C, H, W) real or 0/1 values (binarized as ``x >= cut``), or (B, C, H, ceil(width/64))
    uint64 rows packed already, of true width ``width``. ``edge`` (words,) is a packed image row
    with only its border bits (set to the pad bit), ``full`` a packed row of pad bits only (the
    ph rows above and below the image).
    """
    height = x.shape[2]
    channels, band_rows = rows.shape[0], rows.shape[1]
    for c in range(channels):
        for t in range(band_rows):
            r = first_row + t - ph                        # input row (outside: a border row)
            target = rows[c, t]
            if 0 <= r < height:
                _place_row(x[image, c, r], cut, width, pw, edge, target)
            else:
                for w in range(target.shape[0]):
                    target[w] = full[w]


@njit(inline="always")
def _row_piece(row, start, kw, mask):
    """The ``kw`` bits of packed row ``row`` from bit ``start`` (a one-word row: one shift)."""
    if row.shape[0] == 1:
        return (row[0] >> np.uint64(start)) & mask
    return _read_bits(row, start, kw)


@njit(inline="always")
def _channel_taps(rows, top, kh, kw, sw, mask, patches, word, first, out_w, shift, spills):
    """For every position wo of an output row: the kh*kw (<= 64) tap bits of one channel,
    assembled in a register from padded rows ``top .. top + kh - 1`` of ``rows`` (Hp, words),
    then OR-ed into ``patches[word, first + wo]`` at bit ``shift``, the bits that do not fit
    going to ``patches[word + 1, first + wo]`` when ``spills``.

    ``patches`` is indexed directly (2-D), not through row views: inside the parallel kernel
    the same loops writing through two row views (which may alias) ran 3-4x slower.
    """
    back = np.uint64(64) - shift
    for wo in range(out_w):
        bits = np.uint64(0)
        for i in range(kh):
            bits |= _row_piece(rows[top + i], wo * sw, kw, mask) << np.uint64(i * kw)
        patches[word, first + wo] |= bits << shift
        if spills:
            patches[word + 1, first + wo] |= bits >> back


@njit(inline="always")
def _piece_3x3(row0, row1, row2, at):
    """The 9 tap bits of one channel for the window starting at bit ``at`` of the one-word
    padded rows row0..row2: bits at .. at + 2 of row i go to bits 3i .. 3i + 2 ((i, j) order)."""
    mask = np.uint64(7)
    return (((row0 >> at) & mask) | (((row1 >> at) & mask) << np.uint64(3))
            | (((row2 >> at) & mask) << np.uint64(6)))


@njit(inline="always")
def _taps_3x3(rows, c, pair, top, sw, patches, word, first, out_w, shift, spills):
    """``_channel_taps`` for a 3x3 kernel on one-word rows (Wp <= 64), for channel c and, when
    ``pair``, channel c + 1 too: their 9-bit pieces (``_piece_3x3``) are consecutive in the
    patch, so one 18-bit value is OR-ed into ``patches[word, first + wo]`` at bit ``shift``
    (spilling into ``word + 1``), half the read-modify-writes of one channel at a time.
    The row words are loaded once; the loop over the positions is branch-free with constant
    masks and shifts, so LLVM vectorizes it (one variable shift per row and lane)."""
    a0, a1, a2 = rows[c, top, 0], rows[c, top + 1, 0], rows[c, top + 2, 0]
    b0 = b1 = b2 = np.uint64(0)                           # no second channel: zero pieces
    if pair:
        b0, b1, b2 = rows[c + 1, top, 0], rows[c + 1, top + 1, 0], rows[c + 1, top + 2, 0]
    if spills:
        back = np.uint64(64) - shift
        for wo in range(out_w):
            at = np.uint64(wo * sw)
            bits = _piece_3x3(a0, a1, a2, at) | (_piece_3x3(b0, b1, b2, at) << np.uint64(9))
            patches[word, first + wo] |= bits << shift
            patches[word + 1, first + wo] |= bits >> back
    else:
        for wo in range(out_w):
            at = np.uint64(wo * sw)
            bits = _piece_3x3(a0, a1, a2, at) | (_piece_3x3(b0, b1, b2, at) << np.uint64(9))
            patches[word, first + wo] |= bits << shift


@njit(inline="always")
def _band_patches(rows, kh, kw, sh, sw, out_w, patches):
    """patches (words, >= band_h * out_w) = the packed patches of a band from its packed rows
    (columns past the band's positions are 0).

    rows[c, t] is padded row (first output row of the band) * sh + t, for the band_h output
    rows that they cover; output row dh of the band reads rows dh*sh .. dh*sh + kh - 1. When a
    channel's kh*kw taps fit in 64 bits (3x3, 5x5, ...) its kh pieces are assembled in a
    register and OR-ed into the patch words once (3x faster than one read-modify-write per
    piece); 3x3 on one-word rows (Wp <= 64, CIFAR) does two channels per pass
    (``_taps_3x3``); larger kernels place piece by piece.
    """
    channels = rows.shape[0]
    band_h = (rows.shape[1] - kh) // sh + 1
    mask = _low_bits(kw)
    taps = kh * kw
    patches[:] = 0
    for dh in range(band_h):
        first = dh * out_w
        if kh == 3 and kw == 3 and rows.shape[2] == 1:    # the usual case: 2 channels a go
            for c in range(0, channels, 2):
                pair = c + 1 < channels
                offset = c * 9                            # first patch bit of channel c
                spills = (offset & 63) + (18 if pair else 9) > 64
                _taps_3x3(rows, c, pair, dh * sh, sw, patches, offset >> 6, first, out_w,
                          np.uint64(offset & 63), spills)
            continue
        for c in range(channels):
            if taps <= 64:                                # the channel's taps in one go
                offset = c * taps                         # first patch bit of channel c
                shift = np.uint64(offset & 63)
                spills = (offset & 63) + taps > 64
                _channel_taps(rows[c], dh * sh, kh, kw, sw, mask, patches, offset >> 6,
                              first, out_w, shift, spills)
                continue
            for i in range(kh):                           # piece by piece
                row = rows[c, dh * sh + i]
                offset = (c * kh + i) * kw                # first patch bit of this piece
                word = offset >> 6
                shift = np.uint64(offset & 63)
                back = np.uint64(64) - shift
                spills = (offset & 63) + kw > 64
                for wo in range(out_w):
                    bits = _row_piece(row, wo * sw, kw, mask)
                    patches[word, first + wo] |= bits << shift
                    if spills:
                        patches[word + 1, first + wo] |= bits >> back


# --------------------------------------------------------------------------------------------
# the output stage's float tail and sign bits
# --------------------------------------------------------------------------------------------


@njit(inline="always")
def _pool_band(residual, image, ho0, out_w, geometry, pooled):
    """pooled[c, m] = the average-pooled residual at band position m (output rows ho0 onwards)
    of channel c: residual (B, Cr, Hr*Wr) float32, geometry (pool, offset, Wr); the window's
    values summed in row order, then divided by pool*pool, as avg_pool2d does."""
    pool, width = geometry[0], geometry[2]
    divisor = np.float32(pool * pool)
    for c in range(pooled.shape[0]):
        source = residual[image, c]
        for dh in range(pooled.shape[1] // out_w):
            target = pooled[c, dh * out_w:(dh + 1) * out_w]
            corner = (ho0 + dh) * pool * width
            if pool == 2:                             # the usual case, with constant strides
                top, bottom = source[corner:corner + width], source[corner + width:]
                for u in range(out_w):
                    target[u] = ((top[2 * u] + top[2 * u + 1]) + bottom[2 * u]
                                 + bottom[2 * u + 1]) / divisor
                continue
            for tap in range(pool * pool):
                row = source[corner + (tap // pool) * width + tap % pool:]
                if tap == 0:
                    for u in range(out_w):
                        target[u] = row[u * pool]
                else:
                    for u in range(out_w):
                        target[u] += row[u * pool]
            for u in range(out_w):
                target[u] /= divisor


@njit(inline="always")
def _shortcut_row(band, channel, start, length, constants):
    """The ``length`` shortcut values of ``channel`` from band column ``start``: band[channel,
    start:start + length], or, when ``channel`` is outside the band (no residual, or the zero
    channels of a padded shortcut), a row of at least ``length`` constants: -0.0 (adds
    nothing, -0.0 included) for no residual, +0.0 (what adding a zero channel does) for a
    padded one."""
    if 0 <= channel < band.shape[0]:
        return band[channel, start:start + length]
    return constants[:length]


@njit(inline="always")
def _put_sign_rows(values, out_w, rows):
    """rows (H, ceil(out_w/64)) uint64 = the packed signs ``values >= 0`` (sign(0) = +1) of
    values (H * out_w,) float32, H output rows in row-major order: position (r, wo) is bit
    wo % 64 of rows[r, wo // 64], the layout of ``pack_bits(out, axis=-1)``. Every word is
    written (no need to zero ``rows``). When out_w divides 64 (32, 16, 8: CIFAR's maps) one
    vector compare of 64 values gives 64 // out_w whole rows."""
    count = values.shape[0]
    if 64 % out_w == 0:
        per, row_bits = 64 // out_w, _low_bits(out_w)
        for q in range(0, count, 64):
            if q + 64 <= count:
                mask = _sign_mask_64(values[q:q + 64])
            else:
                mask = _pack_word(values[q:count], np.float32(0))
            first = q // out_w
            for r in range(min(per, (count - q) // out_w)):
                rows[first + r, 0] = (mask >> np.uint64(r * out_w)) & row_bits
        return
    for r in range(rows.shape[0]):
        for w in range(rows.shape[1]):
            start = r * out_w + 64 * w
            n = min(64, out_w - 64 * w)
            if n == 64:
                rows[r, w] = _sign_mask_64(values[start:start + 64])
            else:
                rows[r, w] = _pack_word(values[start:start + n], np.float32(0))


# --------------------------------------------------------------------------------------------
# the fused kernel
# --------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def _conv_kernel(x, cut, width, ph, pw, edge, full, kh, kw, sh, sw, out_h, out_w, band_h, b, k,
                 correction, base, kind, scale, bias, tail, residual, geometry, low, high, flip,
                 threshold, out_dots, out_float, out_bits, out_sign):
    """The whole convolution, output (B, N, out_h*out_w) in the array of ``kind``.

    dot[img, n, p] = k - 2 * popcount(patch(img, p) ^ b[n]) - correction[n, p], then
    kind DOTS: out_dots int32 = dot; AFFINE: out_float float32 = float32(dot) * scale[n] +
    bias[n], then the float tail of conv.FloatTail: ((v - mean) * inv_std) * gamma + beta with
    tail (4, N) = the mean, inv_std, gamma, beta rows, + the shortcut from residual (B, Cr,
    Hr*Wr) and geometry = its (pool, offset, Wr) (``FloatTail``'s residual_pool and
    residual_offset; skipped when residual is empty), clipped to [low, high] (absent
    parts are given as identities), and when out_sign is not empty the sign bits of the result
    in out_sign (B, N, out_h, ceil(out_w/64)) uint64 (every word written); THRESHOLD: out_bits
    uint8 = (dot * flip[n] >= threshold[n]). The other output arrays (and unused per-channel
    arrays) are ignored.

    x (B, C, H, W) float32 or uint8 0/1, binarized as ``x >= cut``, or uint64 (B, C, H,
    ceil(width/64)) packed rows; width the true input width; b (N4, words) the packed weights
    zero-padded to a multiple of 4 rows; correction (N, out_h*out_w) int32; base (N,
    out_h*out_w) float32 = float32(k - correction) for AFFINE (else unused): the float output
    computes float32(dot) as base - 2 * float32(mismatches), exact for |values| <= 2^24, with
    no int64 arithmetic in the loop (LLVM then keeps it 16 float32 lanes wide).
    """
    batch, channels = x.shape[0], x.shape[1]
    words = b.shape[1]
    row_words = edge.shape[0]
    n_cols = correction.shape[0]
    bands = (out_h + band_h - 1) // band_h
    has_residual, has_sign = residual.size > 0, out_sign.size > 0
    pool, offset = geometry[0], geometry[1]
    for item in prange(batch * bands):
        image = item // bands
        ho0 = (item - image * bands) * band_h
        h = min(band_h, out_h - ho0)
        rows = np.empty((channels, (h - 1) * sh + kh, row_words), np.uint64)
        _band_rows(x, cut, width, image, ho0 * sh, ph, pw, edge, full, rows)
        span = (h * out_w + 63) // 64 * 64                # zero columns up to a multiple of 64
        patches = np.empty((words, span), np.uint64)
        _band_patches(rows, kh, kw, sh, sw, out_w, patches)
        # the shortcut rows of the band: the residual itself, or its pooled band (position
        # origin + m of the image at column m)
        band, origin = residual[image if has_residual else 0], 0
        if has_residual and pool > 1:
            band, origin = np.empty((residual.shape[1], h * out_w), np.float32), ho0 * out_w
            _pool_band(residual, image, ho0, out_w, geometry, band)

        # no residual: x + -0.0 = x; a zero channel of a padded shortcut: x + 0.0
        constants = np.full(span, np.float32(0.0) if has_residual else np.float32(-0.0))

        acc = np.empty((COLS, span), np.int32)
        p0, length = ho0 * out_w, h * out_w               # the item's positions in the image
        for j in range(0, n_cols, COLS):
            _count_mismatches(patches, b, j, acc)
            for c in range(min(COLS, n_cols - j)):
                n = j + c
                mismatches = acc[c]
                fix = correction[n, p0:p0 + length]
                if kind == DOTS:
                    target_dots = out_dots[image, n, p0:p0 + length]
                    for t in range(length):
                        target_dots[t] = k - 2 * mismatches[t] - fix[t]
                elif kind == AFFINE:
                    target_float = out_float[image, n, p0:p0 + length]
                    start = base[n, p0:p0 + length]
                    s, o = scale[n], bias[n]
                    mean, inv_std, gamma, beta = tail[0, n], tail[1, n], tail[2, n], tail[3, n]
                    shortcut = _shortcut_row(band, n - offset, p0 - origin, length, constants)
                    for t in range(length):                # float32 ops in the tail's order
                        dot = start[t] - np.float32(2) * np.float32(mismatches[t])
                        v = dot * s + o
                        v = ((v - mean) * inv_std) * gamma + beta + shortcut[t]
                        target_float[t] = min(max(v, low), high)
                    if has_sign:
                        _put_sign_rows(target_float, out_w, out_sign[image, n, ho0:ho0 + h])
                else:
                    target_bits = out_bits[image, n, p0:p0 + length]
                    f, limit = flip[n], threshold[n]
                    for t in range(length):
                        dot = k - 2 * mismatches[t] - fix[t]
                        target_bits[t] = dot * f >= limit


@njit(parallel=True, cache=True)
def _im2col_pack_kernel(x, kh, kw, sh, sw, out_h, out_w, edge, full, patches_t):
    """patches_t (words, B*out_h*out_w) of an already padded 0/1 uint8 map x (steps 1 and 2 of
    ``_conv_kernel`` for whole images; for tests and inspection)."""
    batch, channels = x.shape[0], x.shape[1]
    positions = out_h * out_w
    for image in prange(batch):
        rows = np.empty((channels, x.shape[2], edge.shape[0]), np.uint64)
        _band_rows(x, np.uint8(1), x.shape[3], image, 0, 0, 0, edge, full, rows)
        patches = np.empty((patches_t.shape[0], positions), np.uint64)
        _band_patches(rows, kh, kw, sh, sw, out_w, patches)
        patches_t[:, image * positions:(image + 1) * positions] = patches


# --------------------------------------------------------------------------------------------
# wrappers
# --------------------------------------------------------------------------------------------


def _as_kernel_input(x, width):
    """(x, cut) as ``_conv_kernel`` takes them: float32 and packed uint64 rows as they are,
    everything else as a 0/1 uint8 map (``cut`` is unused for packed rows)."""
    if x.dtype in (np.float32, np.uint64):
        return np.ascontiguousarray(x), x.dtype.type(0)
    if x.dtype != np.bool_:
        x = x >= 0
    return np.ascontiguousarray(x).view(np.uint8), np.uint8(1)


def _tail_arrays(tail, cout: int):
    """(rows, residual, geometry, low, high) of ``_conv_kernel`` for a conv.FloatTail or None:
    rows (4, cout) float32 = mean, inv_std, gamma, beta, with the identities 0, 1, 1, -0.0 for
    absent parts (x - 0, x * 1 and x + -0.0 give x bit for bit, -0.0 included); residual
    (B, Cr, Hr*Wr) C-contiguous float32, empty (1, 0, 0) when absent; geometry the (pool,
    offset, Wr) of its shortcut; (low, high) the clip, (-inf, inf) when absent."""
    rows = np.empty((4, cout), np.float32)
    rows[:] = np.array([0.0, 1.0, 1.0, -0.0], np.float32)[:, None]
    residual, geometry = np.empty((1, 0, 0), np.float32), (1, 0, 0)
    if tail is None:
        return rows, residual, geometry, np.float32(-np.inf), np.float32(np.inf)
    for row, values in enumerate((tail.mean, tail.inv_std, tail.gamma, tail.beta)):
        if values is not None:
            rows[row] = values
    if tail.residual is not None:
        batch, channels, height, width = tail.residual.shape
        residual = np.ascontiguousarray(tail.residual, dtype=np.float32).reshape(
            batch, channels, height * width)
        geometry = (tail.residual_pool, tail.residual_offset, width)
    low, high = (-np.inf, np.inf) if tail.clip is None else tail.clip
    return rows, residual, geometry, np.float32(low), np.float32(high)


def _border_words(width: int, pw: int, pad_bit: bool) -> tuple[np.ndarray, np.ndarray]:
    """(edge, full): the packed words of a padded row (width + 2*pw bits) that has only its
    border bits set to ``pad_bit``, and of a row of pad bits only."""
    border = np.zeros(width + 2 * pw, dtype=bool)
    border[:pw] = border[pw + width:] = pad_bit
    return _pack_bool_last(border), _pack_bool_last(np.full(width + 2 * pw, pad_bit, bool))


def _band_height(batch: int, out_h: int, out_w: int) -> int:
    """Output rows per item: whole images when the batch alone gives every thread ~4 items,
    else thinner bands; at most ~ITEM_POSITIONS positions (so the item's buffers stay small)."""
    wanted_items = 4 * numba.get_num_threads()
    band = -(-batch * out_h // wanted_items)
    return int(max(1, min(out_h, band, ITEM_POSITIONS // out_w)))


def im2col_pack(bits: np.ndarray, kh: int, kw: int, stride) -> np.ndarray:
    """(B, C, Hp, Wp) bool padded bit map -> (ceil(C*kh*kw/64), B*Ho*Wo) uint64 patches, word
    major: column m is the packed patch of output position m = (b, ho, wo), in (c, i, j) order."""
    batch, channels, height, width = bits.shape
    out_h = (height - kh) // stride[0] + 1
    out_w = (width - kw) // stride[1] + 1
    edge, full = _border_words(width, 0, False)
    patches_t = np.empty((n_words(channels * kh * kw), batch * out_h * out_w), dtype=np.uint64)
    _im2col_pack_kernel(np.ascontiguousarray(bits).view(np.uint8), kh, kw, stride[0],
                        stride[1], out_h, out_w, edge, full, patches_t)
    return patches_t


def binary_conv2d(x, width, padding, pad_bit: bool, w_packed: np.ndarray, kh: int, kw: int,
                  stride, epilogue, tail=None, sign_bits: bool = False):
    """Binary convolution of the *unpadded* input x: (B, C, H, W) real or bool, or uint64
    (B, C, H, ceil(W/64)) bits packed along the width with ``width`` = W. The border (padding
    (ph, pw)) is ``pad_bit``, applied while packing. Weights (Cout, words) packed; epilogue and
    result as ``reference.binary_conv2d``; ``tail`` (a checked conv.FloatTail, affine epilogue
    only) is applied in the output stage, and with ``sign_bits`` (affine only) the result is
    (out, pack_bits(out, axis=-1)), the packed signs written by the output stage too."""
    x, cut = _as_kernel_input(x, width)
    batch, channels, height = x.shape[:3]
    in_width = x.shape[3] if width is None else width
    (ph, pw), (sh, sw) = padding, stride
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (in_width + 2 * pw - kw) // sw + 1
    cout = w_packed.shape[0]
    edge, full = _border_words(in_width, pw, pad_bit)
    correction = np.ascontiguousarray(epilogue.correction.reshape(cout, out_h * out_w),
                                      dtype=np.int32)
    k = channels * kh * kw
    shape = (batch, cout, out_h * out_w)
    none_f, none_i = np.empty(0, np.float32), np.empty(0, np.int32)
    out_dots = out_float = out_bits = None
    base = np.empty((0, 0), np.float32)        # float32(k - correction), for the affine output
    if epilogue.kind == "dots":
        kind, out_dots = DOTS, np.empty(shape, dtype=np.int32)
    elif epilogue.kind == "affine":
        kind, out_float = AFFINE, np.empty(shape, dtype=np.float32)
        base = (k - correction).astype(np.float32)
    else:
        kind, out_bits = THRESHOLD, np.empty(shape, dtype=np.uint8)
    out_sign = (np.empty((batch, cout, out_h, n_words(out_w)), np.uint64) if sign_bits
                else np.empty((0, 0, 0, 0), np.uint64))
    scale = none_f if epilogue.scale is None else np.ascontiguousarray(epilogue.scale, np.float32)
    bias = none_f if epilogue.bias is None else np.ascontiguousarray(epilogue.bias, np.float32)
    flip = none_i if epilogue.flip is None else np.ascontiguousarray(epilogue.flip, np.int32)
    threshold = (none_i if epilogue.threshold is None
                 else np.ascontiguousarray(epilogue.threshold, np.int32))
    unused = (np.empty((0, 0, 0), np.int32), np.empty((0, 0, 0), np.float32),
              np.empty((0, 0, 0), np.uint8))
    rows, residual, geometry, low, high = _tail_arrays(tail, cout)
    _conv_kernel(x, cut, in_width, ph, pw, edge, full, kh, kw, sh, sw, out_h, out_w,
                 _band_height(batch, out_h, out_w), _pad_rows(w_packed, COLS),
                 np.int64(k), correction, base, kind, scale, bias, rows, residual,
                 geometry, low, high, flip, threshold,
                 unused[0] if out_dots is None else out_dots,
                 unused[1] if out_float is None else out_float,
                 unused[2] if out_bits is None else out_bits, out_sign)
    if kind == THRESHOLD:
        return _pack_bool_last(out_bits.reshape(batch, cout, out_h, out_w).view(bool))
    out = (out_dots if kind == DOTS else out_float).reshape(batch, cout, out_h, out_w)
    return (out, out_sign) if sign_bits else out
