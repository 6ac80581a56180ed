"""DataLoader: cut a data set held in memory into (optionally shuffled, augmented) batches."""

from __future__ import annotations

import math

import numpy as np

from tinybnn.errors import ConfigError, ShapeError
from tinybnn.random import default_rng, get_rng


class DataLoader:
    """Iterate over ``(x, y)`` batches of an in-memory data set.

    Parameters
    ----------
    images : array (N, C, H, W)
        Float images (e.g. from ``load_dataset(..., as_float=True)``, the default). Integer images
        are accepted only together with a ``transform`` that turns them into floats
        (e.g. ``ToFloat()``): the loader never rescales pixels by itself.
    labels : array (N,)
        Integer class indices.
    batch_size : int
        Samples per batch.
    shuffle : bool
        Visit the samples in a new random order every epoch (drawn from ``rng``).
    drop_last : bool
        Leave out the last batch when it is smaller than ``batch_size``.
    transform : callable, optional
        Applied to each batch of images, e.g. ``Compose([RandomCrop(...), Normalize(...)])``.
    rng : None, int or numpy.random.Generator
        Source of the shuffling order: a seed, a Generator, or ``None`` for tinybnn's default
        generator as it is when an epoch starts (``tinybnn.manual_seed(s)`` reseeds it). The same
        seed gives the same sequence of batches, epoch after epoch.

    Each iteration (one epoch) yields ``x`` float32 (B, C, H, W) and ``y`` int64 (B,), with
    B = ``batch_size`` except perhaps for the last batch. ``len(loader)`` is the number of batches
    per epoch.
    """

    def __init__(self, images, labels, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, transform=None, rng=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(images) != len(labels):
            raise ShapeError(
                f"DataLoader needs one label per image: got images of shape {images.shape} and "
                f"labels of shape {labels.shape}; pass labels as a 1-D array of length N."
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ConfigError(
                f"DataLoader labels must be integer class indices, got dtype {labels.dtype}; "
                f"convert them with labels.astype(np.int64)."
            )
        if not np.issubdtype(images.dtype, np.floating) and transform is None:
            raise ConfigError(
                f"DataLoader got {images.dtype} images and no transform; convert them once with "
                f"to_float(images) (or load them with as_float=True), or pass transform=ToFloat()."
            )
        is_integer = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
        if not is_integer or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.rng = None if rng is None else get_rng(rng)  # None: the default, looked up per epoch

    @property
    def num_samples(self) -> int:
        """N, the number of samples in the data set."""
        return len(self.labels)

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self):
        if self.shuffle:
            rng = self.rng if self.rng is not None else default_rng()
            order = rng.permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples)
        for batch in range(len(self)):
            index = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            x = self.images[index]
            if self.transform is not None:
                x = self.transform(x)
            if not np.issubdtype(x.dtype, np.floating):
                raise ConfigError(
                    f"the DataLoader transform returned {x.dtype} images; end it with a "
                    f"conversion to floats, e.g. ToFloat()."
                )
            yield x.astype(np.float32, copy=False), self.labels[index]
