"""``xnor_gemm``: dot products of bit-packed ±1 rows, one signature for every backend."""

from __future__ import annotations

import numpy as np

from tinybnn.errors import ShapeError

from .backends import resolve_backend
from .pack import check_words


def xnor_gemm(a_packed, b_packed, k: int, backend: str | None = None):
    """All dot products between the ±1 rows of ``a`` and of ``b``, from their packed bits.

    ``dot[m, n] = k - 2 * popcount(a[m] XOR b[n])``: equal, bit for bit, to the float matmul
    ``unpack_bits(a, k) @ unpack_bits(b, k).T``.

    Args:
        a_packed: (M, W) uint64, e.g. ``pack_bits(x)`` of M activation rows of length k.
        b_packed: (N, W) uint64, e.g. ``pack_bits(w.reshape(N, -1))`` (weights row by row).
        k: the true reduction length; W must be ceil(k / 64).
        backend: "numpy", "numba", "cupy", or None (CuPy inputs -> "cupy", else "numba").

    Returns:
        (M, N) int32 on the inputs' device. The numba backend returns it in column-major
        (Fortran) order, the order its kernel writes (see cpu.py); the values are the same.

    Raises:
        ShapeError: wrong dtype, wrong number of axes, or word counts that do not fit k.
        ConfigError: unknown backend, or one this machine cannot run.
    """
    backend = resolve_backend(backend, a_packed, b_packed)
    check_gemm_operands(a_packed, b_packed, k)
    if backend == "cupy":
        from . import gpu
        return gpu.xnor_gemm(a_packed, b_packed, int(k))
    a = np.ascontiguousarray(a_packed)
    b = np.ascontiguousarray(b_packed)
    if backend == "numpy":
        from . import reference
        return reference.xnor_gemm(a, b, int(k))
    from . import cpu
    return cpu.xnor_gemm(a, b, int(k))


def check_gemm_operands(a, b, k) -> None:
    """ShapeError unless a (M, W) and b (N, W) are uint64 words and W == ceil(k / 64)."""
    for name, operand in (("a_packed", a), ("b_packed", b)):
        dtype = getattr(operand, "dtype", None)
        if dtype != np.uint64:
            raise ShapeError(f"xnor_gemm: {name} must be uint64 words from pack_bits, got "
                             f"{dtype if dtype is not None else type(operand).__name__}; "
                             f"pack it with pack_bits(x, axis=-1)")
        if operand.ndim != 2:
            raise ShapeError(f"xnor_gemm: {name} must be 2-D (rows, words), got shape "
                             f"{tuple(operand.shape)}; reshape it to (-1, words)")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"xnor_gemm: a_packed has {a.shape[1]} words per row but b_packed has "
                         f"{b.shape[1]}; both must be packed along the same reduction length k")
    check_words(a.shape[1], k, "xnor_gemm: a_packed")
