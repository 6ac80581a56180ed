"""Writers of the published file formats, used to make small test files.

Each writer is written from the format descriptions (struct, gzip, tarfile), independently of the
readers in tinybnn.data, so that a test compares the two.
"""

import gzip
import hashlib
import io
import struct
import tarfile

import numpy as np

IDX_TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype(">i2"): 0x0B, np.dtype(">f4"): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file holding ``array`` (header written with struct, data big-endian)."""
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = struct.pack(">HBB", 0, IDX_TYPE_CODES[big_endian], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian).tobytes()


def gz(data: bytes) -> bytes:
    """gzip-compress, as the MNIST files are published."""
    return gzip.compress(data, mtime=0)


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR binary records: label byte(s), then the red, green and blue 32×32 planes.

    ``images`` uint8 (N, 3, 32, 32); ``labels`` uint8 (N, label_bytes).
    """
    out = bytearray()
    for image, label in zip(images, labels, strict=True):
        out += bytes(label.tolist())
        for plane in image:  # red, then green, then blue
            out += plane.tobytes()
    return bytes(out)


def tar_gz(members: dict) -> bytes:
    """A .tar.gz archive holding ``{path inside the archive: bytes}``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def md5(data: bytes) -> str:
    """The MD5 digest of ``data`` as 32 hex digits."""
    return hashlib.md5(data).hexdigest()
