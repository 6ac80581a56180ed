"""Batch transforms against hand-written expectations."""

import numpy as np
import pytest

import tinybnn
from tinybnn.data import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    ToFloat,
    to_float,
)
from tinybnn.errors import ConfigError, ShapeError

# One 1-channel 3×3 image, and the same image padded by one zero pixel on every side.
IMAGE = np.array([[1, 2, 3],
                  [4, 5, 6],
                  [7, 8, 9]], dtype=np.float32)
PADDED = np.array([[0, 0, 0, 0, 0],
                   [0, 1, 2, 3, 0],
                   [0, 4, 5, 6, 0],
                   [0, 7, 8, 9, 0],
                   [0, 0, 0, 0, 0]], dtype=np.float32)


def test_to_float_divides_by_the_pixel_max():
    pixels = np.array([0, 51, 255], dtype=np.uint8).reshape(1, 1, 1, 3)
    np.testing.assert_array_equal(to_float(pixels), np.float32([[[[0.0, 0.2, 1.0]]]]))
    assert to_float(pixels).dtype == np.float32
    np.testing.assert_array_equal(ToFloat(16)(np.array([[[[8, 16]]]], np.uint8)), [[[[0.5, 1]]]])


def test_normalize_per_channel():
    x = np.stack([np.full((2, 2), 0.5), np.full((2, 2), 1.0)])[None].astype(np.float32)
    out = Normalize(mean=[0.5, 0.0], std=[0.25, 2.0])(x)
    assert out.dtype == np.float32 and out.shape == (1, 2, 2, 2)
    np.testing.assert_allclose(out[0, 0], 0.0)
    np.testing.assert_allclose(out[0, 1], 0.5)
    assert x[0, 0, 0, 0] == 0.5  # input untouched


def test_normalize_checks_its_arguments():
    with pytest.raises(ShapeError, match="3 channel means but the batch has 1"):
        Normalize([0.1, 0.2, 0.3], [1, 1, 1])(np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(ConfigError, match="std > 0"):
        Normalize(0.5, 0.0)
    with pytest.raises(ConfigError, match="2 means but 1"):
        Normalize([0.5, 0.5], [0.2])
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        Normalize(0.5, 0.5)(np.zeros((4, 4), np.float32))


def test_random_crop_by_hand_at_the_corners():
    """With padding 1, a 3×3 crop at offset (0, 0) is the top-left of PADDED, at (2, 2) the
    bottom-right; check the two by hand and find them among many random crops."""
    top_left = np.array([[0, 0, 0],
                         [0, 1, 2],
                         [0, 4, 5]], dtype=np.float32)
    bottom_right = np.array([[5, 6, 0],
                             [8, 9, 0],
                             [0, 0, 0]], dtype=np.float32)
    batch = np.broadcast_to(IMAGE, (64, 1, 3, 3))
    crops = RandomCrop(3, padding=1, rng=0)(batch)
    assert crops.shape == (64, 1, 3, 3)
    assert any(np.array_equal(c[0], top_left) for c in crops)
    assert any(np.array_equal(c[0], bottom_right) for c in crops)


def test_random_crop_takes_the_documented_offsets():
    """Offsets are drawn from rng: N tops, then N lefts, each uniform in [0, 2]."""
    batch = np.broadcast_to(IMAGE, (20, 1, 3, 3))
    crops = RandomCrop(3, padding=1, rng=np.random.default_rng(7))(batch)
    same_draws = np.random.default_rng(7)
    tops = same_draws.integers(0, 3, size=20)
    lefts = same_draws.integers(0, 3, size=20)
    for crop, top, left in zip(crops, tops, lefts, strict=True):
        np.testing.assert_array_equal(crop[0], PADDED[top:top + 3, left:left + 3])


def test_random_crop_cuts_every_channel_at_the_same_place():
    x = np.stack([IMAGE, IMAGE * 10, IMAGE * 100])[None].repeat(8, axis=0)  # (8, 3, 3, 3)
    crops = RandomCrop((2, 3), padding=1, rng=3)(x)
    assert crops.shape == (8, 3, 2, 3)
    np.testing.assert_array_equal(crops[:, 1], crops[:, 0] * 10)
    np.testing.assert_array_equal(crops[:, 2], crops[:, 0] * 100)


def test_random_crop_without_padding_at_full_size_is_the_identity():
    x = np.random.default_rng(0).random((5, 3, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(RandomCrop(6, rng=0)(x), x)


def test_random_crop_same_seed_same_crops_and_bad_sizes():
    x = np.random.default_rng(0).random((16, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(RandomCrop(8, 2, rng=5)(x), RandomCrop(8, 2, rng=5)(x))
    with pytest.raises(ShapeError, match="cannot cut 12×12"):
        RandomCrop(12, padding=1, rng=0)(x)
    with pytest.raises(ConfigError):
        RandomCrop(0)


def test_flip_always_and_never():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0, rng=0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0, rng=0)(x), x)


def test_flip_by_hand():
    image = np.array([[[1, 2, 3]]], dtype=np.float32)  # (1, 1, 3)
    flipped = RandomHorizontalFlip(p=1.0, rng=0)(image[None])
    np.testing.assert_array_equal(flipped, [[[[3, 2, 1]]]])


def test_flip_chooses_images_from_its_generator():
    x = np.random.default_rng(0).random((50, 1, 4, 4)).astype(np.float32)
    out = RandomHorizontalFlip(p=0.5, rng=np.random.default_rng(11))(x)
    chosen = np.random.default_rng(11).random(50) < 0.5
    np.testing.assert_array_equal(out[chosen], x[chosen][..., ::-1])
    np.testing.assert_array_equal(out[~chosen], x[~chosen])
    assert 0 < chosen.sum() < 50
    with pytest.raises(ConfigError):
        RandomHorizontalFlip(p=1.5)


def test_compose_applies_in_order():
    pixels = np.array([0, 255], dtype=np.uint8).reshape(1, 1, 1, 2)
    pipeline = Compose([ToFloat(), Normalize(0.5, 0.5)])
    np.testing.assert_array_equal(pipeline(pixels), [[[[-1.0, 1.0]]]])
    assert repr(pipeline) == "Compose([ToFloat(pixel_max=255), Normalize(mean=[0.5], std=[0.5])])"


def test_rng_none_follows_tinybnn_manual_seed(keep_default_rng):
    x = np.random.default_rng(0).random((16, 1, 6, 6)).astype(np.float32)
    crop = RandomCrop(4, padding=1)  # built before seeding: the default is looked up per call
    tinybnn.manual_seed(3)
    first = crop(x)
    tinybnn.manual_seed(3)
    np.testing.assert_array_equal(crop(x), first)
