"""tinybnn.kernels: bit-packed XNOR-popcount arithmetic for Binary Neural Networks.

A ±1 vector of length K is stored as ceil(K/64) uint64 words (bit 1 = +1, sign(0) = +1,
little-endian bit order, zero padding bits), and a dot product of two such vectors is
``K - 2 * popcount(a XOR b)``. On top of that:

* ``pack_bits`` / ``unpack_bits``: ±1 (or real) arrays <-> packed words along any axis;
* ``xnor_gemm(a, b, k)``: all dot products between packed rows, (M, W) x (N, W) -> (M, N) int32;
* ``binary_conv2d(x, w_packed, kernel_size, ...)``: a binary convolution with fused im2col +
  packing, the three padding conventions and fused output transforms (float scale + bias, or a
  threshold emitting packed bits for the next binary layer);
* three backends behind each call: "numpy" (the readable reference), "numba" (the fast CPU
  kernels) and "cupy" (CUDA kernels in xnor.cu). ``available_backends()`` lists this machine's.

Modules: pack (bit layout), gemm and conv (the public calls, argument checks, backend choice),
reference (NumPy), cpu and cpu_conv (Numba), gpu + xnor.cu (CuPy / CUDA), harness +
cpu_harness/ (the CUDA kernels compiled for the CPU, for tests without a GPU), bench
(``bench_kernels`` times the Numba GEMM against float32 ``numpy.matmul``).
"""

from .backends import BACKENDS, available_backends
from .conv import (
    binary_conv2d,
    conv_output_size,
    sign_threshold,
    threshold_from_values,
    zero_padding_correction,
)
from .gemm import xnor_gemm
from .pack import n_words, pack_bits, unpack_bits

__all__ = [
    "BACKENDS",
    "available_backends",
    "binary_conv2d",
    "conv_output_size",
    "n_words",
    "pack_bits",
    "sign_threshold",
    "threshold_from_values",
    "unpack_bits",
    "xnor_gemm",
    "zero_padding_correction",
]
