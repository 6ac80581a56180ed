"""Direct convolution forward for small reductions (a network's first layer, e.g. 3 RGB channels).

Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, OH, OW), as in
:mod:`tinybnn.functional.conv`.

When K = C·kh·kw is small (27 for a 3×3 kernel on RGB images) the im2col matrix product is tiny
and limited by memory: it writes K rows of columns, reads them back, and its (O, N·OH·OW) result
must then be transposed to NCHW, which costs as much again. Here a compiled loop computes each
output plane of y directly instead::

    y[n, o, a, b] = Σ_{c, i, j} w[o, c, i, j] · xpad[n, c, a·sh + i, b·sw + j]  (+ b[o])

term by term: each term (c, i, j) is the weight, a scalar, times a shifted copy of the input,
added to the whole output plane in one loop that LLVM vectorises. Every output pixel adds its K
terms in the fixed order (c, i, j) and nothing is reordered, so the result does not depend on
threads or chunking, and sums of ±1 products are exact integers (binary layers rely on that).

To make every term one contiguous run, each image is first copied into its stride phases,
``phases[c, qh, qw, r, s] = xpad[c, r·sh + qh, s·sw + qw]`` (Hq × Wq each, Hq = OH + (kh − 1) // sh,
Wq = OW + (kw − 1) // sw; with stride 1 this is just the padded image). Term (c, i, j) at output
pixel (a, b) then reads phase (i mod sh, j mod sw) at row a + i // sh, column b + j // sw: the
output plane, kept with rows Wq apart, is the phase plane shifted by a fixed offset. The
Wq − OW extra values per row are computed and dropped.

Two things keep the loop near the CPU's multiply-add throughput: a pass over the plane adds nine
terms at once (one load and store of the sum per nine products), and it does so for four output
channels, which share the loads of the input (four measured 1.25x faster than two on a 3→16
stem, 32 images on one thread).

Only the forward pass is direct; the backward pass stays with im2col (:class:`Conv2d`).
"""

from __future__ import annotations

import numpy as np

from .im2col import _compiled

#: Largest reduction K = C·kh·kw computed directly at any shape. Measured (conv2d forward, 2
#: threads, batch 128-256): the direct loop is faster at every shape tried with K <= 32 (3×3 on
#: 3-4 channels at stride 1 and 2, 1×1 on 3-32 channels, 5×5 on one channel; 0.5-0.9× the time
#: of im2col + BLAS), but not on 8×8 images or at stride 2 with K = 72 or more, where the BLAS
#: product wins.
MAX_DIRECT_REDUCTION = 32
#: Stride 1 on large output planes (at least this many pixels) keeps the direct loop up to
#: :data:`MAX_DIRECT_REDUCTION_LARGE`: ResNet-20's 16→16 convolutions on 32×32 images (K = 144)
#: measured 5.6 ms direct vs 7.5 ms by im2col + BLAS (forward, batch 128, 2 threads); on 16×16
#: planes (32→32, K = 288) the BLAS product is faster (5.3 vs 5.9 ms).
MIN_LARGE_PLANE, MAX_DIRECT_REDUCTION_LARGE = 1024, 160


def uses_direct(xp, c: int, kh: int, kw: int, stride=(1, 1), out_pixels: int = 0) -> bool:
    """Whether conv2d's forward runs the direct loop: NumPy arrays, Numba installed, and a small
    reduction K = C·kh·kw <= :data:`MAX_DIRECT_REDUCTION`, or K <=
    :data:`MAX_DIRECT_REDUCTION_LARGE` at stride 1 with at least :data:`MIN_LARGE_PLANE` output
    pixels per plane (``out_pixels`` = OH·OW)."""
    k = c * kh * kw
    small = k <= MAX_DIRECT_REDUCTION or (
        tuple(stride) == (1, 1) and out_pixels >= MIN_LARGE_PLANE
        and k <= MAX_DIRECT_REDUCTION_LARGE)
    return xp.__name__ == "numpy" and small and _kernel() is not None


def _kernel():
    """The compiled loops, or None without Numba. ``fastmath={"contract"}`` lets LLVM fuse each
    multiply and add into one FMA instruction (one rounding instead of two); nothing is
    reordered, so every pixel still adds its terms in the order (c, i, j)."""
    return _compiled(_direct_loops, fastmath={"contract"})


def direct_conv_into(x, weight, bias, y, stride, padding, pad_value: float) -> None:
    """``y = conv2d(x, weight) + bias`` written into y in place, by the compiled loop.

    x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None, y (N, O, OH, OW) C-contiguous, of
    the result dtype; stride and padding are (for H, for W) pairs; the border holds ``pad_value``.
    Releases the GIL, so threads can run it on different images side by side.
    """
    (sh, sw), (ph, pw) = stride, padding
    if bias is None:
        bias = np.zeros(weight.shape[0], dtype=y.dtype)
    _kernel()(np.ascontiguousarray(x), np.ascontiguousarray(weight), bias, y, sh, sw, ph, pw,
              pad_value)


def _direct_loops(x, weight, bias, y, sh, sw, ph, pw, pad_value):
    """The loops of :func:`direct_conv_into`; all arrays C-contiguous and walked as flat arrays
    with unsigned indices (Numba then leaves out its negative-index checks, which would keep LLVM
    from vectorising).

    Each image is first copied into its stride phases (see the module docstring). Then output
    channels go four at a time (past the last channel, the last one is computed again): their
    planes sum the K terms in acc_a .. acc_d (OH rows Wq apart), nine terms per pass and the
    last K mod 9 one per pass; a pass reads each input value once for the four channels. The
    first OW values of each row of acc, plus the bias, go to y.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = y.shape[2], y.shape[3]
    hq, wq = oh + (kh - 1) // sh, ow + (kw - 1) // sw
    taps = c * kh * kw
    span = (oh - 1) * wq + ow                     # acc values from pixel (0, 0) to (OH−1, OW−1)
    phases = np.full(c * sh * sw * hq * wq, pad_value, dtype=y.dtype)
    acc_a, acc_b = np.empty(oh * wq, dtype=y.dtype), np.empty(oh * wq, dtype=y.dtype)
    acc_c, acc_d = np.empty(oh * wq, dtype=y.dtype), np.empty(oh * wq, dtype=y.dtype)
    x_flat, w_flat, dst = x.reshape(-1), weight.reshape(-1), y.reshape(-1)
    offsets = np.empty(taps, dtype=np.uint64)     # phases index of term (c, i, j) at pixel (0, 0)
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                plane = (ci * sh + i % sh) * sw + j % sw
                offsets[(ci * kh + i) * kw + j] = (plane * hq + i // sh) * wq + j // sw

    def copy_image(ni):
        """phases[c, qh, qw, r, b] = x[ni, c, r·sh + qh − ph, b·sw + qw − pw] wherever that pixel
        is inside x (the rest keeps pad_value)."""
        for ci in range(c):
            for qh in range(sh):
                for qw in range(sw):
                    plane = (ci * sh + qh) * sw + qw
                    b0 = min(wq, (pw - qw + sw - 1) // sw)          # first b inside x
                    b1 = max(b0, min(wq, (w - 1 + pw - qw) // sw + 1))  # past the last one
                    for r in range(hq):
                        row = r * sh + qh - ph
                        if 0 <= row < h:
                            origin = ((ni * c + ci) * h + row) * w + qw - pw  # x index of b = 0
                            start = (plane * hq + r) * wq
                            for b in range(b0, b1):
                                phases[np.uint64(start + b)] = x_flat[np.uint64(origin + b * sw)]

    def add_term(k, ka, kb, kc, kd):
        """Term k for the four channels, weights w_flat[ka], .., w_flat[kd]."""
        start, wa, wb, wc, wd = offsets[k], w_flat[ka], w_flat[kb], w_flat[kc], w_flat[kd]
        for t in range(span):
            u = np.uint64(t)
            value = phases[start + u]
            acc_a[u] += wa * value
            acc_b[u] += wb * value
            acc_c[u] += wc * value
            acc_d[u] += wd * value

    def nine(values, k):
        """values[k .. k + 8] as nine scalars (kept in registers by the loop below)."""
        return (values[k], values[k + 1], values[k + 2], values[k + 3], values[k + 4],
                values[k + 5], values[k + 6], values[k + 7], values[k + 8])

    def add_nine_terms(k, ka, kb, kc, kd):
        """Terms k .. k + 8 for the four channels, weights w_flat[ka ..] .. w_flat[kd ..]: each
        value of acc adds its nine terms in order, left to right."""
        s0, s1, s2, s3, s4, s5, s6, s7, s8 = nine(offsets, k)
        a0, a1, a2, a3, a4, a5, a6, a7, a8 = nine(w_flat, ka)
        b0, b1, b2, b3, b4, b5, b6, b7, b8 = nine(w_flat, kb)
        c0, c1, c2, c3, c4, c5, c6, c7, c8 = nine(w_flat, kc)
        d0, d1, d2, d3, d4, d5, d6, d7, d8 = nine(w_flat, kd)
        for t in range(span):
            u = np.uint64(t)
            p0, p1, p2 = phases[s0 + u], phases[s1 + u], phases[s2 + u]
            p3, p4, p5 = phases[s3 + u], phases[s4 + u], phases[s5 + u]
            p6, p7, p8 = phases[s6 + u], phases[s7 + u], phases[s8 + u]
            acc_a[u] = (acc_a[u] + a0 * p0 + a1 * p1 + a2 * p2 + a3 * p3 + a4 * p4 + a5 * p5
                        + a6 * p6 + a7 * p7 + a8 * p8)
            acc_b[u] = (acc_b[u] + b0 * p0 + b1 * p1 + b2 * p2 + b3 * p3 + b4 * p4 + b5 * p5
                        + b6 * p6 + b7 * p7 + b8 * p8)
            acc_c[u] = (acc_c[u] + c0 * p0 + c1 * p1 + c2 * p2 + c3 * p3 + c4 * p4 + c5 * p5
                        + c6 * p6 + c7 * p7 + c8 * p8)
            acc_d[u] = (acc_d[u] + d0 * p0 + d1 * p1 + d2 * p2 + d3 * p3 + d4 * p4 + d5 * p5
                        + d6 * p6 + d7 * p7 + d8 * p8)

    def store(acc, ni, oi):
        """y[ni, oi] = acc without the extra columns, plus the bias."""
        plane, bias_o = (ni * o + oi) * oh * ow, bias[oi]
        for a in range(oh):
            row, dst_row = a * wq, plane + a * ow
            for b in range(ow):
                dst[np.uint64(dst_row + b)] = acc[np.uint64(row + b)] + bias_o

    for ni in range(n):
        copy_image(ni)
        for oa in range(0, o, 4):
            ob, oc, od = min(oa + 1, o - 1), min(oa + 2, o - 1), min(oa + 3, o - 1)
            acc_a[:] = 0
            acc_b[:] = 0
            acc_c[:] = 0
            acc_d[:] = 0
            k = 0
            while k + 9 <= taps:
                add_nine_terms(k, oa * taps + k, ob * taps + k, oc * taps + k, od * taps + k)
                k += 9
            for k in range(k, taps):
                add_term(k, oa * taps + k, ob * taps + k, oc * taps + k, od * taps + k)
            store(acc_a, ni, oa)
            store(acc_b, ni, ob)
            store(acc_c, ni, oc)
            store(acc_d, ni, od)
