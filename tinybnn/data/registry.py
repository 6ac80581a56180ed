"""The data sets tinybnn knows, their metadata, and :func:`load_dataset`, the one way to load them.

=================  =======  ===========  =============  ==========================================
name               classes  input shape  train / test   source
=================  =======  ===========  =============  ==========================================
``digits``         10       (1, 8, 8)    1437 / 360     scikit-learn's bundled copy (offline)
``mnist``          10       (1, 28, 28)  60000 / 10000  IDX ``.gz`` files, downloaded
``fashion_mnist``  10       (1, 28, 28)  60000 / 10000  IDX ``.gz`` files, downloaded
``cifar10``        10       (3, 32, 32)  50000 / 10000  ``cifar-10-binary.tar.gz``, downloaded
``cifar100``       100      (3, 32, 32)  50000 / 10000  ``cifar-100-binary.tar.gz``, downloaded
=================  =======  ===========  =============  ==========================================

Downloaded files are cached (see :mod:`tinybnn.data.download` for where) and checked against the
MD5 checksums their publishers list:

- MNIST and Fashion-MNIST: the values in torchvision's ``torchvision/datasets/mnist.py``
  (``MNIST.resources``, ``FashionMNIST.resources``), which match Fashion-MNIST's README;
- CIFAR-10 and CIFAR-100 binary versions: the table on https://www.cs.toronto.edu/~kriz/cifar.html.

CIFAR-100 labels are the 100 *fine* classes (the coarse label byte is read and dropped; use
:func:`tinybnn.data.cifar.read_cifar_archive` for both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from tinybnn.data.cifar import CIFAR10_MEMBERS, CIFAR100_MEMBERS, read_cifar_archive
from tinybnn.data.digits import DIGITS_PIXEL_MAX, DIGITS_SPLIT_SIZES, read_digits
from tinybnn.data.download import RemoteFile, cache_dir, ensure_file
from tinybnn.data.idx import read_idx
from tinybnn.data.transforms import to_float
from tinybnn.errors import ConfigError, DatasetError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a training script need to know about a data set.

    ``mean`` and ``std`` are per channel, for pixels scaled to [0, 1] (``Normalize(mean, std)``),
    computed on the training split. ``pixel_max`` is the largest stored pixel value (what
    :func:`~tinybnn.data.transforms.to_float` divides by). ``files`` lists, per split, the files to
    download into the cache sub-folder ``folder``; ``reader(split, paths)`` parses them into
    ``images`` uint8 (N, C, H, W) and integer ``labels`` (N,).
    """

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    split_sizes: Mapping[str, int]
    pixel_max: int = 255
    folder: str | None = None
    files: Mapping[str, tuple[RemoteFile, ...]] = field(default_factory=dict, repr=False)
    reader: Callable | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------------- readers


def _read_digits(split, paths):
    return read_digits(split)


def _read_idx_pair(split, paths):
    """MNIST-style split: an IDX image file (N, H, W) and an IDX label file (N,)."""
    images_path, labels_path = paths
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DatasetError(
            f"{images_path} / {labels_path} hold arrays of shapes {images.shape} / "
            f"{labels.shape}, expected (N, H, W) / (N,). Delete them and run again to download "
            f"them anew."
        )
    return images[:, None], labels


def _read_cifar10(split, paths):
    images, labels = read_cifar_archive(paths[0], CIFAR10_MEMBERS[split], label_bytes=1)
    return images, labels[:, 0]


def _read_cifar100(split, paths):
    images, labels = read_cifar_archive(paths[0], CIFAR100_MEMBERS[split], label_bytes=2)
    return images, labels[:, 1]  # column 0 is the coarse label, column 1 the fine one


# ---------------------------------------------------------------------------------- registry

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_MNIST_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
_CIFAR_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)


def _remote(name: str, md5: str, mirrors: tuple[str, ...]) -> RemoteFile:
    return RemoteFile(name=name, md5=md5, urls=tuple(base + name for base in mirrors))


def _idx_files(md5s: Mapping[str, str], mirrors: tuple[str, ...]):
    """The (images, labels) IDX files of each split, named as published."""
    def pair(prefix):
        return tuple(_remote(f"{prefix}-{kind}.gz", md5s[f"{prefix}-{kind}.gz"], mirrors)
                     for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
    return {"train": pair("train"), "test": pair("t10k")}


_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_CIFAR10_ARCHIVE = _remote("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
                           _CIFAR_MIRRORS)
_CIFAR100_ARCHIVE = _remote("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8",
                            _CIFAR_MIRRORS)

#: Every data set by name. Normalization statistics are those of the training split.
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        name="digits", num_classes=10, input_shape=(1, 8, 8),
        mean=(0.3049,), std=(0.3759,),
        split_sizes=dict(DIGITS_SPLIT_SIZES), pixel_max=DIGITS_PIXEL_MAX,
        reader=_read_digits,
    ),
    "mnist": DatasetInfo(
        name="mnist", num_classes=10, input_shape=(1, 28, 28),
        mean=(0.1307,), std=(0.3081,),
        split_sizes={"train": 60000, "test": 10000}, folder="mnist",
        files=_idx_files(_MNIST_MD5, _MNIST_MIRRORS), reader=_read_idx_pair,
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist", num_classes=10, input_shape=(1, 28, 28),
        mean=(0.2860,), std=(0.3530,),
        split_sizes={"train": 60000, "test": 10000}, folder="fashion_mnist",
        files=_idx_files(_FASHION_MNIST_MD5, _FASHION_MNIST_MIRRORS), reader=_read_idx_pair,
    ),
    "cifar10": DatasetInfo(
        name="cifar10", num_classes=10, input_shape=(3, 32, 32),
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        split_sizes={"train": 50000, "test": 10000}, folder="cifar10",
        files={"train": (_CIFAR10_ARCHIVE,), "test": (_CIFAR10_ARCHIVE,)}, reader=_read_cifar10,
    ),
    "cifar100": DatasetInfo(
        name="cifar100", num_classes=100, input_shape=(3, 32, 32),
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
        split_sizes={"train": 50000, "test": 10000}, folder="cifar100",
        files={"train": (_CIFAR100_ARCHIVE,), "test": (_CIFAR100_ARCHIVE,)},
        reader=_read_cifar100,
    ),
}


def list_datasets() -> list[str]:
    """The names :func:`load_dataset` accepts, sorted."""
    return sorted(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a data set. ``"Fashion-MNIST"`` and ``"fashion_mnist"`` are
    the same name (case and ``-``/``_`` do not matter)."""
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise ConfigError(
            f"unknown data set {name!r}; valid names are: {', '.join(list_datasets())}."
        )
    return DATASETS[key]


def load_dataset(name: str, split: str = "train", root=None, download: bool = True,
                 as_float: bool = True):
    """Load one split of a data set into memory.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`: digits, mnist, fashion_mnist, cifar10, cifar100.
    split : str
        ``"train"`` or ``"test"``.
    root : path, optional
        The cache folder; the data set's files live in its sub-folder ``root/<name>/``. Default:
        :func:`~tinybnn.data.download.cache_dir` (``TINYBNN_DATA`` overrides it).
    download : bool
        Download missing files. With ``False``, a missing file raises :class:`DatasetError`.
    as_float : bool
        ``True`` (default): images float32 in [0, 1], converted once here (``pixels /
        pixel_max``). ``False``: the stored uint8 pixels (0–255; 0–16 for digits) -- to save
        memory, then convert per batch with ``DataLoader(..., transform=ToFloat(info.pixel_max))``.

    Returns
    -------
    images : array (N, C, H, W), float32 in [0, 1] (or uint8, see ``as_float``)
    labels : array (N,), int64 class indices in [0, num_classes)
    """
    info = dataset_info(name)
    if split not in info.split_sizes:
        raise ConfigError(f"unknown split {split!r} of {info.name}; use 'train' or 'test'.")
    paths = ()
    if info.files:
        folder = Path(root if root is not None else cache_dir()).expanduser() / info.folder
        paths = tuple(ensure_file(remote, folder, download) for remote in info.files[split])
    images, labels = info.reader(split, paths)
    _check_loaded(info, split, images, labels, paths)
    labels = labels.astype(np.int64)
    if as_float:
        images = to_float(images, info.pixel_max)
    return images, labels


def _check_loaded(info: DatasetInfo, split: str, images, labels, paths) -> None:
    """Raise DatasetError unless the parsed split has the published size, shape and classes."""
    files = ", ".join(str(p) for p in paths) or f"the {info.name} data"
    fix = "Delete the file(s) and run again to download them anew."
    expected = info.split_sizes[split]
    if images.shape[1:] != info.input_shape or len(images) != expected:
        raise DatasetError(
            f"{files} hold {split} images of shape {images.shape}, expected "
            f"{(expected, *info.input_shape)}. {fix}"
        )
    if labels.shape != (expected,):
        raise DatasetError(
            f"{files} hold {labels.shape[0]} {split} labels for {expected} images. {fix}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= info.num_classes):
        raise DatasetError(
            f"{files} hold labels from {labels.min()} to {labels.max()}, outside 0…"
            f"{info.num_classes - 1}. {fix}"
        )
