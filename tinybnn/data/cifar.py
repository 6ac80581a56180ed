"""Reading the *binary* versions of CIFAR-10 and CIFAR-100 (no pickle anywhere).

The binary archives hold fixed-size records, one per image, one after another:

==============  ==================================================  ==============
data set        record                                              record bytes
==============  ==================================================  ==============
CIFAR-10        ``<label> <3072 pixels>``                           3073
CIFAR-100       ``<coarse label> <fine label> <3072 pixels>``       3074
==============  ==================================================  ==============

The 3072 pixel bytes are the red plane, then the green plane, then the blue plane, each 32×32 in
row-major order: exactly a ``(3, 32, 32)`` array in C order, so a batch reshapes straight to NCHW.

Archive members read (nothing is extracted to disk):

- ``cifar-10-binary.tar.gz``: ``cifar-10-batches-bin/data_batch_1.bin`` … ``data_batch_5.bin``
  (train, 10 000 records each) and ``cifar-10-batches-bin/test_batch.bin`` (10 000 records);
- ``cifar-100-binary.tar.gz``: ``cifar-100-binary/train.bin`` (50 000) and
  ``cifar-100-binary/test.bin`` (10 000).

Reference: https://www.cs.toronto.edu/~kriz/cifar.html ("Binary version").
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np

from tinybnn.errors import DatasetError

#: Bytes of one image: 3 channels × 32 rows × 32 columns.
CIFAR_IMAGE_BYTES = 3 * 32 * 32

#: Archive members of each split.
CIFAR10_MEMBERS = {
    "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("cifar-10-batches-bin/test_batch.bin",),
}
CIFAR100_MEMBERS = {
    "train": ("cifar-100-binary/train.bin",),
    "test": ("cifar-100-binary/test.bin",),
}

_FIX = "Delete the archive and run again to download it anew."


def parse_cifar_records(data: bytes, label_bytes: int, source: str = "<bytes>"):
    """Split CIFAR binary records into images and labels.

    ``label_bytes`` is 1 for CIFAR-10 and 2 for CIFAR-100. Returns

    - ``images``: uint8 array of shape (N, 3, 32, 32);
    - ``labels``: uint8 array of shape (N, label_bytes), the label bytes of each record in order
      (CIFAR-100: column 0 coarse, column 1 fine).

    Raises :class:`DatasetError` (naming ``source``) when the size is not a whole number of
    records.
    """
    record_bytes = label_bytes + CIFAR_IMAGE_BYTES
    if len(data) == 0 or len(data) % record_bytes != 0:
        raise DatasetError(
            f"{source} holds {len(data)} bytes, which is not a whole number of {record_bytes}-byte "
            f"CIFAR records: the file is truncated or is not a CIFAR binary batch. {_FIX}"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, record_bytes)
    labels = records[:, :label_bytes].copy()
    images = records[:, label_bytes:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def read_cifar_archive(path: str | os.PathLike, members, label_bytes: int):
    """Read the given members of a CIFAR binary ``.tar.gz`` and stack their records.

    ``members`` are paths inside the archive (see :data:`CIFAR10_MEMBERS`). Returns ``images``
    uint8 (N, 3, 32, 32) and ``labels`` uint8 (N, label_bytes), in member order.
    """
    path = Path(path)
    image_parts, label_parts = [], []
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for name in members:
                try:
                    member = archive.getmember(name)
                except KeyError:
                    raise DatasetError(
                        f"{path} has no member {name}: it is not the official CIFAR binary "
                        f"archive. {_FIX}"
                    ) from None
                stream = archive.extractfile(member)
                if stream is None:
                    raise DatasetError(f"{path}: member {name} is not a regular file. {_FIX}")
                images, labels = parse_cifar_records(stream.read(), label_bytes, f"{path}:{name}")
                image_parts.append(images)
                label_parts.append(labels)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DatasetError(f"{path} is a damaged or truncated archive ({error}). {_FIX}") from error
    return np.concatenate(image_parts), np.concatenate(label_parts)
