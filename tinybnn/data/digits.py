"""scikit-learn's 8×8 handwritten digits: the small default data set, bundled, no download.

1797 grayscale images of the digits 0–9, 8×8 pixels, each pixel an integer count 0–16 (from the
UCI "Optical Recognition of Handwritten Digits" set). scikit-learn ships the file, so this works
offline.

The split is fixed and needs no random numbers: **train = the first 1437 images, test = the last
360**, in the order scikit-learn stores them. The file is grouped by writer, so the test images
come from writers not seen in training, and every class is represented (33–37 test images each).
"""

from __future__ import annotations

import numpy as np

from tinybnn.errors import ConfigError

#: Number of images in each split (1437 + 360 = 1797).
DIGITS_SPLIT_SIZES = {"train": 1437, "test": 360}

#: The largest pixel value: digits pixels are counts 0–16.
DIGITS_PIXEL_MAX = 16


def read_digits(split: str):
    """Return one split of the digits data.

    Returns ``images`` uint8 (N, 1, 8, 8) with values 0–16 and ``labels`` int64 (N,), with
    N = 1437 for ``"train"`` and 360 for ``"test"``.
    """
    if split not in DIGITS_SPLIT_SIZES:
        raise ConfigError(f"unknown split {split!r} of digits; use 'train' or 'test'.")
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    bunch = load_digits()
    images = bunch.images.astype(np.uint8).reshape(-1, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    cut = DIGITS_SPLIT_SIZES["train"]
    if split == "train":
        return images[:cut].copy(), labels[:cut].copy()
    return images[cut:].copy(), labels[cut:].copy()  # "test"
