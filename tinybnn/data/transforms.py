"""Transforms of image batches: float conversion, normalization and data augmentation.

Every transform takes a whole batch, a NumPy array of shape (N, C, H, W), and returns a new array
(the input is never modified). Each works on the batch at once -- no Python loop over images.
Random transforms draw from an explicit ``numpy.random.Generator``, their ``rng`` argument: an int
seed, a Generator (which may be shared with the :class:`~tinybnn.data.DataLoader`), or ``None`` for
tinybnn's default generator (``tinybnn.manual_seed(s)`` reseeds it). The same seed gives the same
augmented batches.

A usual CIFAR training pipeline::

    augment = Compose([
        RandomCrop(32, padding=4, rng=rng),
        RandomHorizontalFlip(rng=rng),
        Normalize(info.mean, info.std),
    ])
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinybnn.errors import ConfigError, ShapeError
from tinybnn.random import default_rng, get_rng


def _check_batch(x: np.ndarray, who: str) -> None:
    """Raise ShapeError unless ``x`` is a 4-D (N, C, H, W) batch."""
    if np.ndim(x) != 4:
        raise ShapeError(
            f"{who} expects a batch of shape (N, C, H, W), got shape {np.shape(x)}; add the "
            f"missing axes, e.g. x[None] for one image or x[:, None] for (N, H, W) grayscale."
        )


def to_float(images: np.ndarray, pixel_max: float = 255) -> np.ndarray:
    """Integer pixels → float32 in [0, 1]: ``images / pixel_max``.

    Convert a whole data set once, before training, rather than every batch. ``pixel_max`` is 255
    for MNIST and CIFAR and 16 for digits (see ``DatasetInfo.pixel_max``).
    """
    return np.true_divide(images, np.float32(pixel_max), dtype=np.float32)


class ToFloat:
    """Transform form of :func:`to_float`, for keeping a data set as uint8 and converting per batch.

    Converting per batch costs a little time every step but saves memory (CIFAR's 50 000 training
    images take 150 MB as uint8, 600 MB as float32).
    """

    def __init__(self, pixel_max: float = 255):
        self.pixel_max = pixel_max

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return to_float(x, self.pixel_max)

    def __repr__(self) -> str:
        return f"ToFloat(pixel_max={self.pixel_max})"


class Normalize:
    """Per-channel standardization: ``(x - mean[c]) / std[c]``.

    ``mean`` and ``std`` are a number (every channel) or a sequence with one value per channel.
    Input (N, C, H, W); output float32 (N, C, H, W).
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.size != self.std.size:
            raise ConfigError(
                f"Normalize got {self.mean.size} means but {self.std.size} standard deviations; "
                f"give one of each per channel."
            )
        if np.any(self.std <= 0):
            raise ConfigError(f"Normalize needs every std > 0, got {self.std.tolist()}.")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_batch(x, "Normalize")
        channels = x.shape[1]
        if self.mean.size not in (1, channels):
            raise ShapeError(
                f"Normalize has {self.mean.size} channel means but the batch has {channels} "
                f"channels (shape {x.shape}); use the mean/std of this data set."
            )
        mean = self.mean.reshape(1, -1, 1, 1)
        std = self.std.reshape(1, -1, 1, 1)
        return ((x - mean) / std).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        def short(values):
            return [float(f"{v:.6g}") for v in values]
        return f"Normalize(mean={short(self.mean)}, std={short(self.std)})"


class RandomCrop:
    """Pad each image with zeros, then cut a ``size`` window at a random place in each image.

    ``size`` is an int (square) or ``(height, width)``; ``padding`` zero pixels are added on all
    four sides first. Each image of the batch gets its own offsets, drawn from ``rng``: first the N
    top offsets, then the N left offsets, each uniform in ``[0, H + 2·padding - height]``.
    Input (N, C, H, W); output (N, C, height, width).
    """

    def __init__(self, size, padding: int = 0, rng=None):
        self.size = (size, size) if np.ndim(size) == 0 else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ConfigError(
                f"RandomCrop size must be an int or (height, width), each ≥ 1; got {size}."
            )
        if padding < 0:
            raise ConfigError(f"RandomCrop padding must be ≥ 0, got {padding}.")
        self.padding = int(padding)
        self.rng = None if rng is None else get_rng(rng)  # None: the default, looked up per call

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_batch(x, "RandomCrop")
        height, width = self.size
        p = self.padding
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, padded_h, padded_w = padded.shape
        if padded_h < height or padded_w < width:
            raise ShapeError(
                f"RandomCrop cannot cut {height}×{width} from images of "
                f"{x.shape[2]}×{x.shape[3]} padded by {p}; lower the size or raise the padding."
            )
        # Every possible window of every image, as a view: (N, C, rows, cols, height, width) ...
        windows = sliding_window_view(padded, (height, width), axis=(2, 3))
        rng = self.rng if self.rng is not None else default_rng()
        top = rng.integers(0, padded_h - height + 1, size=n)
        left = rng.integers(0, padded_w - width + 1, size=n)
        # ... of which each image keeps one. The three index arrays broadcast over N and, being
        # split by the ':' of the channel axis, their N axis comes first: (N, C, height, width).
        return windows[np.arange(n), :, top, left]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left↔right with probability ``p``, independently.

    Draws N uniform numbers from ``rng``; image i is flipped when its number is < p.
    Input and output (N, C, H, W).
    """

    def __init__(self, p: float = 0.5, rng=None):
        if not 0 <= p <= 1:
            raise ConfigError(f"RandomHorizontalFlip needs 0 ≤ p ≤ 1, got p={p}.")
        self.p = p
        self.rng = None if rng is None else get_rng(rng)  # None: the default, looked up per call

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_batch(x, "RandomHorizontalFlip")
        rng = self.rng if self.rng is not None else default_rng()
        flip = rng.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms one after another: ``Compose([a, b])(x) == b(a(x))``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"
