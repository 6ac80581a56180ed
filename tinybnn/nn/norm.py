"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm (PyTorch's names and defaults).

Batch norm keeps its running statistics as buffers (saved in ``state_dict``, not trained):
``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked``. In training mode
(``module.train()``) it normalises with the batch statistics and updates the running ones in place;
in eval mode (``module.eval()``) it uses the running statistics.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from .module import Module, Parameter


class _BatchNorm(Module):
    """Shared body of BatchNorm1d/2d; subclasses name the accepted input ranks."""

    ranks: tuple[int, ...] = ()
    shape_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=np.float32))
            self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
            self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x):
        if len(x.shape) not in self.ranks:
            raise ShapeError(f"{type(self).__name__} expects input of shape {self.shape_text}, "
                             f"got {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}: input has {x.shape[1]} channels but the "
                             f"layer was built for {self.num_features}")
        use_batch_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked[...] += 1    # in place: the buffer stays registered
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=use_batch_stats, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) inputs, per channel C."""

    ranks = (2, 3)
    shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) inputs, per channel C."""

    ranks = (4,)
    shape_text = "(N, C, H, W)"


class LayerNorm(Module):
    """Layer norm over the last axes ``normalized_shape``; γ = 1 and β = 0 initially."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
            normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = Parameter(np.ones(shape, dtype=np.float32)) if elementwise_affine else None
        self.bias = (Parameter(np.zeros(shape, dtype=np.float32))
                     if elementwise_affine and bias else None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, affine={self.weight is not None}"
