"""Float ±1 references for the kernel tests: what the bit-packed kernels must reproduce exactly."""

import numpy as np


def signs(x):
    """sign with sign(0) = +1, as float64."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


def float_matmul(a, b):
    """(M, K) x (N, K) real -> (M, N) int64 dots of their signs."""
    return (signs(a) @ signs(b).T).astype(np.int64)


def float_conv(x, w, stride, padding, pad_value):
    """Binary convolution in plain float arithmetic (the definition the kernels implement).

    x (B, C, H, W) and w (Cout, C, kh, kw) are binarized with sign(0) = +1; the binarized input is
    padded with pad_value (0, +1, -1) and cross-correlated with sign(w). Returns int64
    (B, Cout, Ho, Wo).
    """
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = w.shape[2:]
    padded = np.pad(signs(x), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw]                     # (B, C, Ho, Wo, kh, kw)
    return np.einsum("bchwij,ocij->bohw", windows, signs(w)).astype(np.int64)


def random_real(rng, shape, zeros=0.1):
    """Gaussian values with a fraction of exact zeros (to exercise sign(0) = +1)."""
    x = rng.normal(size=shape).astype(np.float32)
    x[rng.random(shape) < zeros] = 0.0
    return x
