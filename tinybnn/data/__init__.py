"""Data sets, transforms and batching for tinybnn.

Load a split, build a loader, train::

    from tinybnn.data import DataLoader, Normalize, dataset_info, load_dataset

    info = dataset_info("digits")
    images, labels = load_dataset("digits", split="train")     # float32 (1437, 1, 8, 8), int64
    loader = DataLoader(images, labels, batch_size=64, shuffle=True, rng=0,
                        transform=Normalize(info.mean, info.std))
    for x, y in loader:                                         # x float32 (64, 1, 8, 8), y int64
        ...

Modules:

- :mod:`~tinybnn.data.registry`   -- ``load_dataset``, ``dataset_info``, the names and metadata;
- :mod:`~tinybnn.data.download`   -- the cache folder (``TINYBNN_DATA``), downloads, checksums;
- :mod:`~tinybnn.data.idx`        -- MNIST / Fashion-MNIST IDX files;
- :mod:`~tinybnn.data.cifar`      -- CIFAR-10 / CIFAR-100 binary archives;
- :mod:`~tinybnn.data.digits`     -- scikit-learn's 8×8 digits and their fixed split;
- :mod:`~tinybnn.data.transforms` -- ``to_float``, ``Normalize``, crops, flips, ``Compose``;
- :mod:`~tinybnn.data.loader`     -- ``DataLoader``.

Randomness (shuffling, crops, flips) comes from explicit ``numpy.random.Generator`` s: each takes
``rng`` = a seed, a Generator, or None for tinybnn's default (see :mod:`tinybnn.random`).
"""

from tinybnn.data.download import RemoteFile, cache_dir
from tinybnn.data.loader import DataLoader
from tinybnn.data.registry import DATASETS, DatasetInfo, dataset_info, list_datasets, load_dataset
from tinybnn.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    ToFloat,
    to_float,
)

__all__ = [
    "DATASETS",
    "Compose",
    "DataLoader",
    "DatasetInfo",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RemoteFile",
    "ToFloat",
    "cache_dir",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "to_float",
]
