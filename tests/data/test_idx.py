"""Reading IDX files (MNIST's format): round trips and every way a file can be bad."""

import numpy as np
import pytest

from tinybnn.data.idx import parse_idx, read_idx
from tinybnn.errors import DatasetError

from .formats import gz, idx_bytes


def test_gzipped_images_and_labels_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9, 1], dtype=np.uint8)
    (tmp_path / "images.gz").write_bytes(gz(idx_bytes(images)))
    (tmp_path / "labels.gz").write_bytes(gz(idx_bytes(labels)))

    read_images = read_idx(tmp_path / "images.gz")
    read_labels = read_idx(tmp_path / "labels.gz")

    assert read_images.dtype == np.uint8 and read_images.shape == (4, 28, 28)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    read_images[0, 0, 0] = 7  # the result is an ordinary writable array


def test_uncompressed_file_is_read_too(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels").write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), labels)


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_multibyte_types_are_big_endian(dtype):
    array = np.array([[1, -2, 300], [4, 5, -600]], dtype=dtype)
    data = idx_bytes(array)
    assert data[2] in (0x0B, 0x0D)
    parsed = parse_idx(data)
    assert parsed.dtype == np.dtype(dtype) and parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, array)


def test_header_is_decoded_by_hand():
    # magic 0x00000801 (uint8, 1 dimension), size 3, then the 3 bytes.
    data = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    np.testing.assert_array_equal(parse_idx(data), [7, 8, 9])


def test_wrong_magic_names_the_file(tmp_path):
    data = bytearray(idx_bytes(np.zeros((2, 3), dtype=np.uint8)))
    data[0] = 0x42
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gz(bytes(data)))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz is not an IDX file"):
        read_idx(path)


def test_unknown_type_code_is_a_wrong_magic():
    with pytest.raises(DatasetError, match="magic number is 0x00000701"):
        parse_idx(bytes([0, 0, 7, 1, 0, 0, 0, 1, 5]))


def test_truncated_data_is_reported_with_sizes(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gz(data[:-100]))
    expected = r"t10k-images-idx3-ubyte.gz is truncated.*2368 bytes.*2268 bytes"
    with pytest.raises(DatasetError, match=expected):
        read_idx(path)


def test_extra_bytes_are_reported():
    data = idx_bytes(np.zeros(5, dtype=np.uint8)) + b"\x00"
    with pytest.raises(DatasetError, match="too long"):
        parse_idx(data, source="labels")


def test_truncated_header_is_reported():
    with pytest.raises(DatasetError, match="truncated inside its IDX header"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0, 0, 2]))
    with pytest.raises(DatasetError, match="too short"):
        parse_idx(b"\x00\x00")


def test_truncated_gzip_stream_names_the_file_and_the_fix(tmp_path):
    compressed = gz(idx_bytes(np.arange(200, dtype=np.uint8).reshape(10, 20)))
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.gz.*truncated.*Delete it"):
        read_idx(path)
