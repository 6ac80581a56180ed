"""The Numba backend's GEMM: fast XNOR-popcount on the CPU (the convolution is in cpu_conv.py).

How the GEMM kernel is laid out (shapes: a (M, W), b (N, W) uint64 words)
--------------------------------------------------------------------------
* Rows of ``a`` are taken 64 at a time (``BLOCK_ROWS``); ``prange`` spreads these blocks over
  the cores. Each block is first copied *transposed* into a small ``panel`` (W, 64): word w of
  the 64 rows is now 64 consecutive uint64 values.
* The inner loop runs over those 64 rows with one word of ``b`` fixed, so it is a plain
  elementwise loop ``acc[m] += popcount(panel[w, m] ^ b_word)`` that LLVM vectorizes: on a CPU
  with AVX512_VPOPCNTDQ one ``vpxorq`` + ``vpopcntq`` + ``vpaddq`` per 8 rows, elsewhere AVX2 /
  scalar ``popcnt``. LLVM's tuning for Intel's server CPUs would keep these loops on 256-bit
  registers (4 rows); importing tinybnn lifts that for Numba (``backend.prefer_wide_vectors``):
  ``tinybnn bench kernels`` went from a median of 10.6-10.9x to 12.7-14.1x over float32 BLAS.
* Register blocking: each pass handles 4 columns of ``b`` (``COLS``) and 4 words at a time, so
  one load of 4 panel words feeds 16 XOR-popcounts, and the accumulator (in L1 cache) is read and
  written once per 16 popcounts instead of once per popcount. Three words left over (W % 4 == 3,
  e.g. K = 144) take one 3-word pass, one or two a one-word loop.
* Popcounts are accumulated in int32 (``acc``, each sum of popcounts cast with ``np.int32``:
  Numba's integer arithmetic is int64, and int64 lanes would halve the width of every vector
  loop that reads the counts; the output stages of cpu_conv.py run 2x wider on int32), and the
  output is written as ``k - 2 * mismatches``.
  The block's results are columns, so the kernel writes a column-major (N, M) array and the
  GEMM returns its transpose view (writing rows of 4 scattered int32 is 2-3x slower at small K).
  The convolution kernels (cpu_conv.py) reuse the same blocks and write straight into NCHW.

Numba has no popcount built-in: ``popcount`` below is an ``@intrinsic`` that emits LLVM's
``ctpop``, which becomes ``popcnt`` / ``vpopcntq``. All kernels use ``cache=True``; each compiles
once for the array types the wrappers pass (always C-contiguous, fixed dtypes). Numba's cache
only watches a kernel's own source file: after editing this file, delete kernels/__pycache__
so that the kernels of cpu_conv.py, which inline the blocks below, are compiled again.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

#: rows of ``a`` per block: the panel holds this many rows
BLOCK_ROWS = 64
#: columns of ``b`` per register block
COLS = 4


# --------------------------------------------------------------------------------------------
# popcount as an LLVM intrinsic
# --------------------------------------------------------------------------------------------


@intrinsic
def popcount(typingctx, word):
    """popcount(word) -> int64: the number of 1 bits of a 64-bit integer (LLVM ``ctpop``).

    Returns int64 (not uint64) so that sums with other int64 stay integers: in Numba
    uint64 + int64 is float64.
    """
    if not (isinstance(word, types.Integer) and word.bitwidth == 64):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(word), codegen


# --------------------------------------------------------------------------------------------
# building blocks shared by the kernels (inlined into each)
# --------------------------------------------------------------------------------------------


@njit(inline="always")
def _load_panel(a, first_row, panel):
    """Copy rows a[first_row : first_row + 64] into panel (W, 64) transposed; zeros past the end.

    Returns the number of real rows (64 except in the last block).
    """
    rows = min(BLOCK_ROWS, a.shape[0] - first_row)
    for m in range(rows):
        for w in range(a.shape[1]):
            panel[w, m] = a[first_row + m, w]
    for m in range(rows, BLOCK_ROWS):
        for w in range(a.shape[1]):
            panel[w, m] = 0
    return rows


@njit(inline="always")
def _count_three_words(panel, b, j, w, acc):
    """acc[c, m] += the mismatches in words w .. w + 2, in one pass over the rows (three
    words left over: K = 144, the 16-channel 3x3 layers of ResNet-20, would else take three)."""
    b00, b01, b02 = b[j, w], b[j, w + 1], b[j, w + 2]
    b10, b11, b12 = b[j + 1, w], b[j + 1, w + 1], b[j + 1, w + 2]
    b20, b21, b22 = b[j + 2, w], b[j + 2, w + 1], b[j + 2, w + 2]
    b30, b31, b32 = b[j + 3, w], b[j + 3, w + 1], b[j + 3, w + 2]
    a0, a1, a2 = panel[w], panel[w + 1], panel[w + 2]
    for m in range(panel.shape[1]):
        x0, x1, x2 = a0[m], a1[m], a2[m]
        acc[0, m] += np.int32(popcount(x0 ^ b00) + popcount(x1 ^ b01)
                              + popcount(x2 ^ b02))
        acc[1, m] += np.int32(popcount(x0 ^ b10) + popcount(x1 ^ b11)
                              + popcount(x2 ^ b12))
        acc[2, m] += np.int32(popcount(x0 ^ b20) + popcount(x1 ^ b21)
                              + popcount(x2 ^ b22))
        acc[3, m] += np.int32(popcount(x0 ^ b30) + popcount(x1 ^ b31)
                              + popcount(x2 ^ b32))


@njit(inline="always")
def _count_mismatches(panel, b, j, acc):
    """acc[c, m] = popcount(row m of the panel XOR row j + c of b), for c < 4 and every row m
    of the panel (W, M): 64 in the GEMM, a whole item of positions in the convolution.

    b must have at least j + 4 rows (the wrapper pads it with zero rows).
    """
    words = panel.shape[0]
    acc[:] = 0
    whole = words - words % 4
    for w in range(0, whole, 4):
        # 16 words of b, fixed for the whole loop over the rows (register blocking)
        b00, b01, b02, b03 = b[j, w], b[j, w + 1], b[j, w + 2], b[j, w + 3]
        b10, b11, b12, b13 = b[j + 1, w], b[j + 1, w + 1], b[j + 1, w + 2], b[j + 1, w + 3]
        b20, b21, b22, b23 = b[j + 2, w], b[j + 2, w + 1], b[j + 2, w + 2], b[j + 2, w + 3]
        b30, b31, b32, b33 = b[j + 3, w], b[j + 3, w + 1], b[j + 3, w + 2], b[j + 3, w + 3]
        a0, a1, a2, a3 = panel[w], panel[w + 1], panel[w + 2], panel[w + 3]
        for m in range(panel.shape[1]):
            x0, x1, x2, x3 = a0[m], a1[m], a2[m], a3[m]
            acc[0, m] += np.int32(popcount(x0 ^ b00) + popcount(x1 ^ b01)
                                  + popcount(x2 ^ b02) + popcount(x3 ^ b03))
            acc[1, m] += np.int32(popcount(x0 ^ b10) + popcount(x1 ^ b11)
                                  + popcount(x2 ^ b12) + popcount(x3 ^ b13))
            acc[2, m] += np.int32(popcount(x0 ^ b20) + popcount(x1 ^ b21)
                                  + popcount(x2 ^ b22) + popcount(x3 ^ b23))
            acc[3, m] += np.int32(popcount(x0 ^ b30) + popcount(x1 ^ b31)
                                  + popcount(x2 ^ b32) + popcount(x3 ^ b33))
    if words - whole == 3:
        _count_three_words(panel, b, j, whole, acc)
        return
    for w in range(whole, words):
        b0, b1, b2, b3 = b[j, w], b[j + 1, w], b[j + 2, w], b[j + 3, w]
        a0 = panel[w]
        for m in range(panel.shape[1]):
            x = a0[m]
            acc[0, m] += np.int32(popcount(x ^ b0))
            acc[1, m] += np.int32(popcount(x ^ b1))
            acc[2, m] += np.int32(popcount(x ^ b2))
            acc[3, m] += np.int32(popcount(x ^ b3))


@njit(parallel=True, cache=True)
def _gemm_kernel(a, b, k, out_t):
    """out_t[n, m] = k - 2 * popcount(a[m] ^ b[n]).

    a (M, W), b (N4, W) with N4 a multiple of 4 (zero rows past N), out_t (N, M) int32.
    """
    n_rows, words = a.shape
    n_cols = out_t.shape[0]
    for block in prange((n_rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
        first = block * BLOCK_ROWS
        panel = np.empty((words, BLOCK_ROWS), np.uint64)
        acc = np.empty((COLS, BLOCK_ROWS), np.int32)
        rows = _load_panel(a, first, panel)
        for j in range(0, n_cols, COLS):
            _count_mismatches(panel, b, j, acc)
            for c in range(min(COLS, n_cols - j)):
                column = out_t[j + c, first:first + rows]
                for m in range(rows):
                    column[m] = k - 2 * acc[c, m]


# --------------------------------------------------------------------------------------------
# the wrapper gemm.py calls (inputs already validated there)
# --------------------------------------------------------------------------------------------


def xnor_gemm(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """(M, W) x (N, W) uint64 -> (M, N) int32 dots, column-major (see the module docstring)."""
    out_t = np.empty((b.shape[0], a.shape[0]), dtype=np.int32)
    if out_t.size:
        _gemm_kernel(a, _pad_rows(b, COLS), np.int64(k), out_t)
    return out_t.T


def _pad_rows(array: np.ndarray, multiple: int) -> np.ndarray:
    """``array`` with zero rows appended up to a multiple of ``multiple`` rows."""
    missing = -array.shape[0] % multiple
    if missing == 0:
        return array
    return np.concatenate([array, np.zeros((missing,) + array.shape[1:], array.dtype)])
