"""Metrics of a classifier: how many predictions are right, and running averages over an epoch.

Logits are the raw scores of the last layer, shape (N, C); labels are integer class indices, shape
(N,). The predicted class of sample n is ``argmax_c logits[n, c]`` (the first one on ties, as
``numpy.argmax`` does).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from ..backend import to_numpy
from ..errors import ShapeError


def _as_numpy(values) -> np.ndarray:
    """The values of a Tensor, a NumPy or a CuPy array, as a NumPy array."""
    if isinstance(values, Tensor):
        values = values.data
    return np.asarray(to_numpy(values))


def count_correct(logits, labels) -> int:
    """Number of samples whose highest logit is at their label.

    Shapes: logits (N, C), labels (N,) integers in [0, C).
    """
    logits, labels = _as_numpy(logits), _as_numpy(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ShapeError(f"accuracy needs logits (N, C) and labels (N,), got logits "
                         f"{logits.shape} and labels {labels.shape}")
    return int((logits.argmax(axis=1) == labels).sum())


def accuracy(logits, labels) -> float:
    """Fraction of samples classified correctly, in [0, 1] (0 for an empty batch).

    Shapes: logits (N, C), labels (N,).
    """
    n = _as_numpy(labels).shape[0]
    return count_correct(logits, labels) / n if n else 0.0


class RunningMean:
    """The mean of values seen so far, each weighted by how many samples it stands for.

    Used for the epoch's training loss: the loss of a batch of B samples is a mean over B, so it
    is added with ``weight=B``; the result is then the mean over every sample of the epoch, also
    when the last batch is smaller.
    """

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def update(self, value: float, weight: int = 1) -> None:
        self.total += float(value) * weight
        self.count += weight

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0
