"""Fixtures of tinybnn.data's tests: small files in the real published formats, a fake server.

Nothing here touches the network or the real cache: every test gets its own empty cache folder
(TINYBNN_DATA points to it) and a `fetch_url` that refuses to run unless a test installs the fake
server.
"""

import dataclasses
import urllib.error

import numpy as np
import pytest

import tinybnn.random
from tinybnn.data import download
from tinybnn.data.registry import DATASETS

from .formats import cifar_records, gz, idx_bytes, md5, tar_gz

# ------------------------------------------------------------------ small fake data sets


@pytest.fixture
def fake_mnist():
    """A tiny MNIST in IDX .gz files: 5 train and 3 test images of 28×28.

    Returns ``{"arrays": {split: (images (N, 28, 28), labels (N,))}, "published": {name: bytes}}``.
    """
    rng = np.random.default_rng(0)
    arrays, published = {}, {}
    for split, prefix, n in (("train", "train", 5), ("test", "t10k", 3)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        arrays[split] = (images, labels)
        published[f"{prefix}-images-idx3-ubyte.gz"] = gz(idx_bytes(images))
        published[f"{prefix}-labels-idx1-ubyte.gz"] = gz(idx_bytes(labels))
    return {"arrays": arrays, "published": published}


@pytest.fixture
def fake_cifar10():
    """A tiny cifar-10-binary.tar.gz: 5 train batches of 2 records, a test batch of 3.

    Returns ``{"arrays": {split: (images (N, 3, 32, 32), labels (N,))}, "published": {...}}``.
    """
    rng = np.random.default_rng(1)
    members, arrays = {}, {}
    train_images, train_labels = [], []
    for i in range(1, 6):
        images = rng.integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(2, 1), dtype=np.uint8)
        members[f"cifar-10-batches-bin/data_batch_{i}.bin"] = cifar_records(images, labels)
        train_images.append(images)
        train_labels.append(labels[:, 0])
    test_images = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    test_labels = rng.integers(0, 10, size=(3, 1), dtype=np.uint8)
    members["cifar-10-batches-bin/test_batch.bin"] = cifar_records(test_images, test_labels)
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\nautomobile\n"
    arrays["train"] = (np.concatenate(train_images), np.concatenate(train_labels))
    arrays["test"] = (test_images, test_labels[:, 0])
    return {"arrays": arrays, "members": members,
            "published": {"cifar-10-binary.tar.gz": tar_gz(members)}}


@pytest.fixture
def fake_cifar100():
    """A tiny cifar-100-binary.tar.gz: 4 train and 2 test records with coarse and fine labels.

    ``arrays[split]`` is (images (N, 3, 32, 32), labels (N, 2)) with columns coarse, fine.
    """
    rng = np.random.default_rng(2)
    members, arrays = {}, {}
    for split, n in (("train", 4), ("test", 2)):
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        coarse = rng.integers(0, 20, size=n, dtype=np.uint8)
        fine = rng.integers(0, 100, size=n, dtype=np.uint8)
        labels = np.stack([coarse, fine], axis=1)
        members[f"cifar-100-binary/{split}.bin"] = cifar_records(images, labels)
        arrays[split] = (images, labels)
    return {"arrays": arrays, "members": members,
            "published": {"cifar-100-binary.tar.gz": tar_gz(members)}}


# ------------------------------------------------------------------ the network and the cache


class FakeServer:
    """Stands in for `download.fetch_url`: serves ``files`` by the last part of the URL.

    ``requests`` records every URL asked for. An unknown name fails like an HTTP 404.
    """

    def __init__(self):
        self.files = {}
        self.requests = []

    def __call__(self, url, out):
        self.requests.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in self.files:
            raise urllib.error.URLError(f"404 Not Found: {url}")
        out.write(self.files[name])


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty cache folder of this test's own; TINYBNN_DATA points to it."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TINYBNN_DATA", str(folder))
    return folder


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Make any attempt to reach the network fail the test loudly."""
    def refuse(url, out):
        raise AssertionError(f"a test tried to download {url}; use the `server` fixture")
    monkeypatch.setattr(download, "fetch_url", refuse)


@pytest.fixture
def server(monkeypatch):
    """A FakeServer installed as `download.fetch_url`."""
    fake = FakeServer()
    monkeypatch.setattr(download, "fetch_url", fake)
    return fake


@pytest.fixture
def shrink_dataset(monkeypatch):
    """Make a registered data set accept small fake files.

    ``shrink_dataset(name, published, split_sizes)`` replaces, for this test only, the published
    MD5 of each file by that of ``published[file name]`` and the split sizes by ``split_sizes``.
    """
    def shrink(name, published, split_sizes):
        info = DATASETS[name]
        files = {
            split: tuple(dataclasses.replace(remote, md5=md5(published[remote.name]))
                         for remote in remotes)
            for split, remotes in info.files.items()
        }
        small = dataclasses.replace(info, files=files, split_sizes=dict(split_sizes))
        monkeypatch.setitem(DATASETS, name, small)
        return small
    return shrink


@pytest.fixture
def keep_default_rng(monkeypatch):
    """Let a test call tinybnn.manual_seed; the default generator is put back afterwards."""
    monkeypatch.setattr(tinybnn.random, "_default", tinybnn.random.default_rng())
