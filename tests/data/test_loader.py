"""DataLoader: batching, shuffling with a seed, drop_last, dtypes, transforms."""

import numpy as np
import pytest

import tinybnn
from tinybnn.data import DataLoader, RandomHorizontalFlip, ToFloat
from tinybnn.errors import ConfigError, ShapeError


def make_data(n):
    """n images whose pixels all equal their index, and labels equal to the index."""
    images = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None, None], (n, 1, 2, 2))
    return images, np.arange(n)


@pytest.mark.parametrize("n, batch_size, drop_last, expected", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3), (2, 5, True, 0),
])
def test_len_counts_batches(n, batch_size, drop_last, expected):
    loader = DataLoader(*make_data(n), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == expected == len(list(loader))


def test_last_batch_kept_or_dropped():
    sizes = [len(y) for _, y in DataLoader(*make_data(10), batch_size=4)]
    assert sizes == [4, 4, 2]
    sizes = [len(y) for _, y in DataLoader(*make_data(10), batch_size=4, drop_last=True)]
    assert sizes == [4, 4]


def test_without_shuffle_the_order_is_kept_and_dtypes_are_fixed():
    batches = list(DataLoader(*make_data(7), batch_size=3))
    for x, y in batches:
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0, 0, 0], y)  # images stay with their labels
    assert np.concatenate([y for _, y in batches]).tolist() == list(range(7))


def test_shuffle_covers_every_sample_exactly_once_per_epoch():
    loader = DataLoader(*make_data(23), batch_size=5, shuffle=True, rng=0)
    for _ in range(2):
        seen = np.concatenate([y for _, y in loader])
        assert sorted(seen.tolist()) == list(range(23))
        assert seen.tolist() != list(range(23))


def test_shuffle_with_drop_last_sees_distinct_samples():
    seen = np.concatenate([y for _, y in DataLoader(*make_data(23), 5, shuffle=True,
                                                   drop_last=True, rng=1)])
    assert len(seen) == 20 and len(set(seen.tolist())) == 20


def test_same_seed_same_batches():
    def epochs(rng):
        loader = DataLoader(*make_data(20), batch_size=6, shuffle=True, rng=rng)
        return [[y.tolist() for _, y in loader] for _ in range(3)]

    assert epochs(42) == epochs(42)
    assert epochs(np.random.default_rng(42)) == epochs(42)
    assert epochs(42) != epochs(43)
    first, second, _ = epochs(42)
    assert first != second  # a new order every epoch


def test_rng_none_follows_tinybnn_manual_seed(keep_default_rng):
    loader = DataLoader(*make_data(20), batch_size=6, shuffle=True)
    tinybnn.manual_seed(5)
    first = [y.tolist() for _, y in loader]
    tinybnn.manual_seed(5)
    assert [y.tolist() for _, y in loader] == first


def test_transform_runs_on_each_batch():
    images = np.arange(4 * 3, dtype=np.uint8).reshape(4, 1, 1, 3) * 20
    loader = DataLoader(images, np.zeros(4, int), batch_size=2, transform=ToFloat())
    x, _ = next(iter(loader))
    np.testing.assert_array_equal(x, images[:2] / np.float32(255))

    flip = DataLoader(images.astype(np.float32), np.zeros(4, int), batch_size=4,
                      transform=RandomHorizontalFlip(p=1.0, rng=0))
    np.testing.assert_array_equal(next(iter(flip))[0], images[..., ::-1])


def test_bad_arguments():
    images, labels = make_data(4)
    with pytest.raises(ShapeError, match="one label per image"):
        DataLoader(images, labels[:3], batch_size=2)
    with pytest.raises(ConfigError, match="batch_size"):
        DataLoader(images, labels, batch_size=0)
    with pytest.raises(ConfigError, match="integer class indices"):
        DataLoader(images, labels.astype(float), batch_size=2)
    with pytest.raises(ConfigError, match="to_float"):
        DataLoader(images.astype(np.uint8), labels, batch_size=2)
