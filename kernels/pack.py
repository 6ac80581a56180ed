"""Bit packing: ±1 values <-> 64-bit words.

The convention every kernel shares (see DESIGN.md):

* a value x becomes the bit ``x >= 0``: bit 1 means +1, bit 0 means −1, and sign(0) = +1;
* the packed axis is the reduction axis; element ``e`` of it goes to word ``e // 64``, bit
  ``e % 64`` (little-endian bit order: bit 0 is the least significant bit of the word);
* the last word is completed with 0 bits. Both operands of a dot product are padded the same way,
  so the padding bits agree and never count as a mismatch::

      dot(a, b) = K - 2 * popcount(a XOR b)        (K = the true length, not 64 * words)

Shapes: ``pack_bits`` turns an axis of length K into an axis of ``n_words(K) = ceil(K / 64)``
uint64 words at the same position; ``unpack_bits`` does the reverse and needs K back.
"""

from __future__ import annotations

import numpy as np

from tinybnn.errors import ShapeError

WORD_BITS = 64


def n_words(k: int) -> int:
    """How many 64-bit words hold ``k`` bits: ceil(k / 64)."""
    return -(-int(k) // WORD_BITS)


def pack_bits(x, axis: int = -1) -> np.ndarray:
    """Binarize ``x`` (sign(0) = +1) and pack ``axis`` into uint64 words.

    Args:
        x: any real array (a bool array counts True as +1, False as −1).
        axis: the axis to pack, normally the reduction axis.

    Returns:
        uint64 array, the shape of ``x`` with ``shape[axis]`` replaced by
        ``ceil(shape[axis] / 64)``, on x's device (a CuPy array is packed by the CUDA kernel ``pack_rows``).
    """
    if _is_cupy(x):
        from . import gpu
        _check_axis(axis, x.ndim, "pack_bits")
        return gpu.pack_bits(x, int(axis) % x.ndim)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ShapeError("pack_bits needs an array with at least one axis; got a scalar. "
                         "Wrap it: pack_bits(np.atleast_1d(x))")
    if x.dtype.kind not in "biuf":
        raise ShapeError(f"pack_bits needs a real (bool, int or float) array, got dtype {x.dtype}; "
                         f"convert it with x.astype(np.float32)")
    axis = _check_axis(axis, x.ndim, "pack_bits")
    bits = x if x.dtype == np.bool_ else x >= 0
    packed = _pack_bool_last(np.moveaxis(bits, axis, -1))
    return np.ascontiguousarray(np.moveaxis(packed, -1, axis))


def unpack_bits(packed, k: int, axis: int = -1) -> np.ndarray:
    """The ±1 float32 values of ``packed`` along ``axis``, cut to the true length ``k``.

    Args:
        packed: uint64 words, as ``pack_bits`` returns them.
        k: the true length of the packed axis (``shape[axis] == ceil(k / 64)`` must hold).
        axis: the packed axis.

    Returns:
        float32 array of ±1, the shape of ``packed`` with ``shape[axis]`` replaced by ``k``, on
        the device of ``packed``.
    """
    if _is_cupy(packed):
        from . import gpu
        _check_axis(axis, packed.ndim, "unpack_bits")
        check_words(packed.shape[axis], k, "unpack_bits: packed")
        return gpu.unpack_bits(packed, k, int(axis) % packed.ndim)
    packed = np.asarray(packed)
    if packed.dtype != np.uint64:
        raise ShapeError(f"unpack_bits needs uint64 words (as pack_bits returns), got dtype "
                         f"{packed.dtype}")
    if packed.ndim == 0:
        raise ShapeError("unpack_bits needs an array of words, got a scalar")
    axis = _check_axis(axis, packed.ndim, "unpack_bits")
    check_words(packed.shape[axis], k, "unpack_bits: packed")
    bits = _unpack_bool_last(np.moveaxis(packed, axis, -1), k)
    values = np.where(bits, np.float32(1), np.float32(-1))
    return np.ascontiguousarray(np.moveaxis(values, -1, axis))


def check_words(words: int, k: int, what: str) -> None:
    """ShapeError unless ``words`` uint64 words are exactly what ``k`` bits need."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
        raise ShapeError(f"k (the true length of the packed axis) must be an integer >= 0, "
                         f"got {k!r}")
    if words != n_words(k):
        raise ShapeError(f"{what} has {words} words per row but k={k} bits need "
                         f"ceil({k}/64) = {n_words(k)}; pass the k the rows were packed with")


def _pack_bool_last(bits: np.ndarray) -> np.ndarray:
    """Pack the last axis of a bool array: (..., K) -> (..., ceil(K/64)) uint64."""
    k = bits.shape[-1]
    padded = np.zeros(bits.shape[:-1] + (n_words(k) * WORD_BITS,), dtype=np.uint8)
    padded[..., :k] = bits
    # packbits with bitorder="little" puts element 8*i + j at bit j of byte i; eight such bytes,
    # read as one little-endian 64-bit integer, put element 64*w + j at bit j of word w.
    as_bytes = np.packbits(padded, axis=-1, bitorder="little")
    return as_bytes.view("<u8").astype(np.uint64, copy=False)


def _unpack_bool_last(words: np.ndarray, k: int) -> np.ndarray:
    """Unpack the last axis: (..., ceil(k/64)) uint64 -> (..., k) bool."""
    as_bytes = np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=k, bitorder="little").astype(bool)


def _is_cupy(array) -> bool:
    """True for a CuPy array (checked by type, so CuPy need not be installed)."""
    return type(array).__module__.split(".")[0] == "cupy"


def _check_axis(axis, ndim: int, who: str) -> int:
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ShapeError(f"{who}: axis {axis!r} is out of range for an array with {ndim} axes")
    return int(axis) % ndim
