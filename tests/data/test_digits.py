"""The digits data set: shapes, value range, and the fixed split."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tinybnn.data import dataset_info, load_dataset


@pytest.fixture(scope="module")
def digits():
    return {split: load_dataset("digits", split) for split in ("train", "test")}


def test_shapes_dtypes_and_range(digits):
    for split, n in (("train", 1437), ("test", 360)):
        images, labels = digits[split]
        assert images.shape == (n, 1, 8, 8) and images.dtype == np.float32
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert images.min() == 0.0 and images.max() == 1.0
        assert set(labels.tolist()) == set(range(10))  # every class in both splits


def test_split_is_the_seeded_permutation_and_partitions_sklearn_data(digits):
    reference = load_digits()
    test = np.zeros(1797, dtype=bool)
    test[np.random.default_rng(0).permutation(1797)[:360]] = True
    np.testing.assert_array_equal(digits["test"][0][:, 0] * 16, reference.images[test])
    np.testing.assert_array_equal(digits["train"][0][:, 0] * 16, reference.images[~test])
    np.testing.assert_array_equal(digits["test"][1], reference.target[test])
    np.testing.assert_array_equal(digits["train"][1], reference.target[~test])


def test_split_is_deterministic(digits):
    again_images, again_labels = load_dataset("digits", "train")
    np.testing.assert_array_equal(again_images, digits["train"][0])
    np.testing.assert_array_equal(again_labels, digits["train"][1])


def test_raw_pixels_are_counts_up_to_16():
    images, _ = load_dataset("digits", "test", as_float=False)
    assert images.dtype == np.uint8 and images.max() == 16
    assert dataset_info("digits").pixel_max == 16


def test_normalization_statistics_are_those_of_the_training_split(digits):
    info = dataset_info("digits")
    images = digits["train"][0]
    assert info.mean[0] == pytest.approx(images.mean(), abs=1e-3)
    assert info.std[0] == pytest.approx(images.std(), abs=1e-3)
