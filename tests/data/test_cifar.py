"""Reading the CIFAR binary format: record layout, archives, and bad files."""

import numpy as np
import pytest

from tinybnn.data.cifar import (
    CIFAR10_MEMBERS,
    CIFAR100_MEMBERS,
    parse_cifar_records,
    read_cifar_archive,
)
from tinybnn.errors import DatasetError

from .formats import tar_gz


def test_record_layout_by_hand():
    # One CIFAR-10 record: label 7, then red plane all 10, green plane all 20, blue plane all 30,
    # except the top-right pixel of the green plane (row 0, column 31), which is 99.
    green = bytearray([20] * 1024)
    green[31] = 99
    record = bytes([7]) + bytes([10] * 1024) + bytes(green) + bytes([30] * 1024)
    assert len(record) == 3073

    images, labels = parse_cifar_records(record, label_bytes=1)

    assert images.shape == (1, 3, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [[7]]
    assert (images[0, 0] == 10).all() and (images[0, 2] == 30).all()
    assert images[0, 1, 0, 31] == 99 and images[0, 1, 1, 0] == 20


def test_cifar100_records_carry_coarse_then_fine_labels():
    record = bytes([4, 87]) + bytes(3072)
    _, labels = parse_cifar_records(record * 2, label_bytes=2)
    assert labels.tolist() == [[4, 87], [4, 87]]


@pytest.mark.parametrize("label_bytes, size", [(1, 3073 * 2 + 5), (2, 3073 * 2), (1, 0)])
def test_partial_records_name_the_source(label_bytes, size):
    with pytest.raises(DatasetError, match=r"data_batch_3.bin holds .* not a whole number"):
        parse_cifar_records(bytes(size), label_bytes, source="data_batch_3.bin")


def test_cifar10_archive_round_trip(tmp_path, fake_cifar10):
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(fake_cifar10["published"]["cifar-10-binary.tar.gz"])
    for split in ("train", "test"):
        images, labels = read_cifar_archive(path, CIFAR10_MEMBERS[split], label_bytes=1)
        expected_images, expected_labels = fake_cifar10["arrays"][split]
        np.testing.assert_array_equal(images, expected_images)  # batches 1..5 in order
        np.testing.assert_array_equal(labels[:, 0], expected_labels)


def test_cifar100_archive_round_trip(tmp_path, fake_cifar100):
    path = tmp_path / "cifar-100-binary.tar.gz"
    path.write_bytes(fake_cifar100["published"]["cifar-100-binary.tar.gz"])
    images, labels = read_cifar_archive(path, CIFAR100_MEMBERS["train"], label_bytes=2)
    np.testing.assert_array_equal(images, fake_cifar100["arrays"]["train"][0])
    np.testing.assert_array_equal(labels, fake_cifar100["arrays"]["train"][1])


def test_missing_member_is_reported(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(tar_gz({"cifar-10-batches-bin/test_batch.bin": bytes(3073)}))
    with pytest.raises(DatasetError, match=r"cifar-10-binary.tar.gz has no member .*data_batch_1"):
        read_cifar_archive(path, CIFAR10_MEMBERS["train"], label_bytes=1)


def test_truncated_archive_names_the_file_and_the_fix(tmp_path, fake_cifar10):
    data = fake_cifar10["published"]["cifar-10-binary.tar.gz"]
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cifar-10-binary.tar.gz .*truncated.*Delete"):
        read_cifar_archive(path, CIFAR10_MEMBERS["train"], label_bytes=1)


def test_not_an_archive_is_reported(tmp_path):
    path = tmp_path / "cifar-100-binary.tar.gz"
    path.write_bytes(b"<html>Service unavailable</html>")
    with pytest.raises(DatasetError, match="cifar-100-binary.tar.gz"):
        read_cifar_archive(path, CIFAR100_MEMBERS["test"], label_bytes=2)
