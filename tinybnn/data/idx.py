"""Reading IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a header followed by the raw array, row-major, big-endian:

======================  ==========================================================================
bytes                   meaning
======================  ==========================================================================
0, 1                    always zero
2                       element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                        0x0D float32, 0x0E float64
3                       number of dimensions ``ndim``
4 .. 4 + 4·ndim         each dimension's size, as a big-endian 32-bit unsigned integer
then                    ``prod(sizes)`` elements
======================  ==========================================================================

MNIST's image files are ``uint8`` with 3 dimensions (N, 28, 28); its label files ``uint8`` with 1
dimension (N). The published files are gzip-compressed (``.gz``); :func:`read_idx` accepts both.

Reference: the format description on Yann LeCun's MNIST page.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from tinybnn.errors import DatasetError

#: IDX element type code → big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the (decompressed) bytes of an IDX file into an array of its shape.

    Returns a writable array in native byte order (``uint8`` for MNIST). ``source`` names the file
    in error messages. Raises :class:`DatasetError` on a wrong magic number or a wrong size.
    """
    fix = "Delete the file and run again to download it anew."
    if len(data) < 4:
        raise DatasetError(f"{source} is too short to be an IDX file ({len(data)} bytes). {fix}")
    zeros, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zeros != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DatasetError(
            f"{source} is not an IDX file: its magic number is 0x{data[:4].hex()} (expected "
            f"0x0000TTNN with a known type TT and NN ≥ 1 dimensions). {fix}"
        )
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise DatasetError(f"{source} is truncated inside its IDX header. {fix}")
    shape = struct.unpack(f">{ndim}I", data[4:header_bytes])
    dtype = IDX_DTYPES[type_code]
    expected_bytes = header_bytes + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected_bytes:
        problem = "truncated" if len(data) < expected_bytes else "too long"
        raise DatasetError(
            f"{source} is {problem}: its IDX header announces shape {shape} "
            f"({expected_bytes} bytes in all) but the file holds {len(data)} bytes. {fix}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_bytes).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a native-order, writable copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed (as published) or not, into an array of its shape."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise DatasetError(
                f"{path} is a damaged or truncated gzip file ({error}). Delete it and run again "
                f"to download it anew."
            ) from error
    return parse_idx(raw, source=str(path))
