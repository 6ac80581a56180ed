"""load_dataset end to end (download from a fake server, parse, check) and the registry."""

import re

import numpy as np
import pytest

from tinybnn.data import DATASETS, dataset_info, list_datasets, load_dataset
from tinybnn.errors import ConfigError, DatasetError

from .formats import gz, idx_bytes

NAMES = ["cifar10", "cifar100", "digits", "fashion_mnist", "mnist"]


def test_the_registry_holds_the_five_data_sets():
    assert list_datasets() == NAMES


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as caught:
        load_dataset("imagenet")
    message = str(caught.value)
    assert "'imagenet'" in message
    assert all(name in message for name in NAMES)


def test_unknown_split_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown split 'validation'.*'train' or 'test'"):
        load_dataset("digits", "validation")


def test_names_ignore_case_and_dashes():
    assert dataset_info("Fashion-MNIST") is DATASETS["fashion_mnist"]


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_consistent(name):
    info = dataset_info(name)
    channels = info.input_shape[0]
    assert len(info.mean) == len(info.std) == channels
    assert all(0 < s < 1 for s in info.std) and all(0 < m < 1 for m in info.mean)
    assert set(info.split_sizes) == {"train", "test"}
    for remotes in info.files.values():
        for remote in remotes:
            assert re.fullmatch(r"[0-9a-f]{32}", remote.md5)
            assert remote.urls and all(url.endswith("/" + remote.name) for url in remote.urls)


def test_published_checksums_are_recorded():
    files = {remote.name: remote.md5 for remote in DATASETS["mnist"].files["train"]}
    assert files["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert DATASETS["cifar10"].files["test"][0].md5 == "c32a1d4ab5d03f1284b67883e8d87530"


# ---------------------------------------------------------------------------- MNIST-style sets


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_data_set_downloads_into_the_cache_and_parses(name, fake_mnist, server, cache,
                                                          shrink_dataset):
    server.files.update(fake_mnist["published"])
    shrink_dataset(name, fake_mnist["published"], {"train": 5, "test": 3})

    for split in ("train", "test"):
        images, labels = load_dataset(name, split)
        expected_images, expected_labels = fake_mnist["arrays"][split]
        assert images.shape == (len(expected_labels), 1, 28, 28) and images.dtype == np.float32
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images[:, 0], expected_images / np.float32(255))
        np.testing.assert_array_equal(labels, expected_labels)

    assert sorted(p.name for p in (cache / name).iterdir()) == sorted(fake_mnist["published"])
    assert len(server.requests) == 4


def test_second_load_uses_the_cache(fake_mnist, server, shrink_dataset):
    server.files.update(fake_mnist["published"])
    shrink_dataset("mnist", fake_mnist["published"], {"train": 5, "test": 3})
    load_dataset("mnist")
    requests = list(server.requests)
    images, _ = load_dataset("mnist", as_float=False)
    assert server.requests == requests
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0], fake_mnist["arrays"]["train"][0])


def test_root_argument_overrides_the_cache(fake_mnist, server, shrink_dataset, tmp_path, cache):
    server.files.update(fake_mnist["published"])
    shrink_dataset("mnist", fake_mnist["published"], {"train": 5, "test": 3})
    load_dataset("mnist", "test", root=tmp_path / "mine")
    assert (tmp_path / "mine" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not cache.exists()


def test_corrupt_cached_file_names_it(fake_mnist, server, shrink_dataset, cache):
    shrink_dataset("mnist", fake_mnist["published"], {"train": 5, "test": 3})
    (cache / "mnist").mkdir(parents=True)
    bad = cache / "mnist" / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"not the published file")
    server.files.update(fake_mnist["published"])
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.gz fails its checksum"):
        load_dataset("mnist")
    assert bad.read_bytes() == b"not the published file"


def test_wrongly_sized_split_is_reported(fake_mnist, server, shrink_dataset):
    server.files.update(fake_mnist["published"])
    shrink_dataset("mnist", fake_mnist["published"], {"train": 60000, "test": 3})
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz.*\(5, 1, 28, 28\).*60000"):
        load_dataset("mnist")


def test_labels_out_of_range_are_reported(fake_mnist, server, shrink_dataset):
    published = dict(fake_mnist["published"])
    published["t10k-labels-idx1-ubyte.gz"] = gz(idx_bytes(np.array([1, 2, 10], dtype=np.uint8)))
    server.files.update(published)
    shrink_dataset("mnist", published, {"train": 5, "test": 3})
    with pytest.raises(DatasetError, match=r"labels from 1 to 10, outside 0…9"):
        load_dataset("mnist", "test")


def test_missing_files_without_download(shrink_dataset, fake_mnist):
    shrink_dataset("mnist", fake_mnist["published"], {"train": 5, "test": 3})
    with pytest.raises(DatasetError, match="is missing"):
        load_dataset("mnist", download=False)


# ---------------------------------------------------------------------------- CIFAR


def test_cifar10_downloads_one_archive_for_both_splits(fake_cifar10, server, cache,
                                                       shrink_dataset):
    server.files.update(fake_cifar10["published"])
    shrink_dataset("cifar10", fake_cifar10["published"], {"train": 10, "test": 3})
    for split in ("train", "test"):
        images, labels = load_dataset("cifar10", split, as_float=False)
        expected_images, expected_labels = fake_cifar10["arrays"][split]
        assert images.shape == (len(expected_labels), 3, 32, 32)
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)
    assert len(server.requests) == 1
    assert [p.name for p in (cache / "cifar10").iterdir()] == ["cifar-10-binary.tar.gz"]


def test_cifar100_labels_are_the_fine_classes(fake_cifar100, server, shrink_dataset):
    server.files.update(fake_cifar100["published"])
    shrink_dataset("cifar100", fake_cifar100["published"], {"train": 4, "test": 2})
    images, labels = load_dataset("cifar100", "test")
    expected_images, expected_labels = fake_cifar100["arrays"]["test"]
    np.testing.assert_array_equal(images, expected_images / np.float32(255))
    np.testing.assert_array_equal(labels, expected_labels[:, 1])
    assert labels.dtype == np.int64
