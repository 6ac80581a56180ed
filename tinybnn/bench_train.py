"""Training speed: how many images per second one SGD step of a binary network processes, in
tinybnn and (when PyTorch is installed) in the same network written in PyTorch, on the CPU, in the
same run.

A training step is: forward of a batch of random 32×32 images, cross-entropy, backward, SGD step
(momentum 0.9, weight decay 1e-4). The network is the W1A1 ResNet-20 of
:func:`tinybnn.models.resnet20` (Bi-Real-style blocks, clipped-STE sign for activations and
weights, no scaling factors); :class:`TorchBinaryResNet20` below rewrites it in PyTorch with a
custom ``torch.autograd.Function`` for the sign STE, so both engines compute the same thing::

    >>> from tinybnn.bench_train import bench_train
    >>> bench_train(batch_size=128, steps=3)
    {'model': 'resnet20', 'batch_size': 128, ..., 'tinybnn_images_per_s': ...,
     'torch_images_per_s': ..., 'slowdown': ...}

``slowdown`` = PyTorch images/s ÷ tinybnn images/s (2.0 means tinybnn takes twice as long per
step). Timings are measured, never asserted (DESIGN.md: tests never assert timings). Run it from
the shell with ``python -m tinybnn.bench_train --batch-size 128 --steps 3``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import numpy as np

from . import functional as F
from .autograd import Tensor
from .backend import reuse_freed_memory
from .errors import ConfigError
from .models.registry import make_model
from .optim.sgd import SGD

LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-4


def _batch(batch_size: int, input_shape, num_classes: int, seed: int = 0):
    """Random images (N, *input_shape) float32 and labels (N,) int64, the same for both engines."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, *input_shape)).astype(np.float32)
    labels = rng.integers(0, num_classes, size=batch_size)
    return images, labels


def _time_steps(step, steps: int, warmup: int) -> float:
    """Run ``step()`` ``warmup`` times untimed, then ``steps`` times; seconds per timed step."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def tinybnn_step_fn(model_name: str = "resnet20", batch_size: int = 128,
                    input_shape=(3, 32, 32), num_classes: int = 10, **model_options):
    """A closure doing one tinybnn training step (forward, loss, backward, SGD) on a fixed batch;
    returns ``(step, model)``. Used by :func:`bench_train` and for profiling."""
    model = make_model(model_name, input_shape=input_shape, num_classes=num_classes,
                       rng=np.random.default_rng(0), **model_options)
    model.train()
    optimizer = SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    images, labels = _batch(batch_size, input_shape, num_classes)
    x = Tensor(images)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step, model


# ---------------------------------------------------------------------------------------------
# The same network in PyTorch
# ---------------------------------------------------------------------------------------------


def _torch_reference():
    """Build the PyTorch classes lazily, so that importing this module never needs torch."""
    import torch
    import torch.nn.functional as TF
    from torch import nn as tnn

    class SignSTE(torch.autograd.Function):
        """sign(x) with sign(0) = +1; backward dy·1[|x| <= 1] (the clipped STE)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x.abs() <= 1).to(grad.dtype)

    class BinaryConv2d(tnn.Conv2d):
        """3×3 convolution of sign(x) with sign(W), zero padding, no bias, no scale."""

        def forward(self, x):
            return TF.conv2d(SignSTE.apply(x), SignSTE.apply(self.weight), None, self.stride,
                             self.padding)

    class Unit(tnn.Module):
        """out = hardtanh(BN(binconv(x)) + shortcut(x)); the shortcut is AvgPool2d(2) + zero
        channel padding when the size changes."""

        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv = BinaryConv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
            self.bn = tnn.BatchNorm2d(c_out)
            self.stride, self.extra = stride, c_out - c_in

        def shortcut(self, x):
            if self.stride != 1:
                x = TF.avg_pool2d(x, self.stride)
            if self.extra:
                before = self.extra // 2
                x = TF.pad(x, (0, 0, 0, 0, before, self.extra - before))
            return x

        def forward(self, x):
            return TF.hardtanh(self.bn(self.conv(x)) + self.shortcut(x))

    class TorchBinaryResNet20(tnn.Module):
        """The W1A1 ResNet-20 of tinybnn.models.resnet20, in PyTorch."""

        def __init__(self, num_classes=10, in_channels=3):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            units, width = [], 16
            for i, out in enumerate((16, 32, 64)):
                for j in range(3):
                    stride = 2 if (i > 0 and j == 0) else 1
                    units += [Unit(width, out, stride), Unit(out, out, 1)]
                    width = out
            self.units = tnn.Sequential(*units)
            self.bn_fc = tnn.BatchNorm1d(64)
            self.fc = tnn.Linear(64, num_classes)
            for m in self.modules():
                if isinstance(m, (tnn.Conv2d, tnn.Linear)):
                    tnn.init.kaiming_normal_(m.weight)

        def forward(self, x):
            x = TF.hardtanh(self.bn1(self.conv1(x)))
            x = self.units(x).mean(dim=(2, 3))
            return self.fc(self.bn_fc(x))

    return torch, TorchBinaryResNet20


def torch_step_fn(batch_size: int = 128, input_shape=(3, 32, 32), num_classes: int = 10):
    """A closure doing one PyTorch training step of :class:`TorchBinaryResNet20`; returns
    ``(step, model)``. Needs torch."""
    torch, TorchBinaryResNet20 = _torch_reference()
    torch.manual_seed(0)
    model = TorchBinaryResNet20(num_classes, in_channels=input_shape[0]).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)
    images, labels = _batch(batch_size, input_shape, num_classes)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step, model


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------

#: models that have a PyTorch twin here
TORCH_TWINS = ("resnet20",)


@contextlib.contextmanager
def _limit_threads(threads: int | None):
    """A context running tinybnn with ``threads`` threads: NumPy's BLAS (through threadpoolctl,
    installed with scikit-learn) and the convolution's chunk threads
    (``tinybnn.functional.parallel.NUM_THREADS``). Does nothing for ``None``."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    try:
        from .functional import parallel
    except ImportError:  # an engine without chunk threads
        parallel = None
    previous = getattr(parallel, "NUM_THREADS", None)
    if parallel is not None:
        parallel.NUM_THREADS = threads
    try:
        with threadpool_limits(threads):
            yield
    finally:
        if parallel is not None:
            parallel.NUM_THREADS = previous


def bench_train(model: str = "resnet20", batch_size: int = 128, steps: int = 3,
                warmup: int = 1, torch: bool = True, threads: int | None = None) -> dict:
    """Time ``steps`` training steps (after ``warmup`` untimed ones) of the W1A1 ``model`` in
    tinybnn and, if ``torch`` is true and PyTorch is installed, of its PyTorch twin.

    ``threads``: run both engines with this many threads (tinybnn: NumPy's BLAS and the
    convolution's chunk threads; PyTorch: ``torch.set_num_threads``); ``None`` keeps each
    library's default (all cores).

    Returns a dict: ``model``, ``batch_size``, ``steps``, ``threads``,
    ``tinybnn_seconds_per_step``, ``tinybnn_images_per_s``, and when PyTorch ran
    ``torch_version``, ``torch_threads``, ``torch_seconds_per_step``, ``torch_images_per_s`` and
    ``slowdown`` (PyTorch images/s ÷ tinybnn images/s); these are ``None`` otherwise.
    """
    if steps < 1 or warmup < 0 or batch_size < 1:
        raise ConfigError(f"need steps >= 1, warmup >= 0, batch_size >= 1; got steps={steps}, "
                          f"warmup={warmup}, batch_size={batch_size}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1 or None, got {threads}")
    reuse_freed_memory()                # as the training loop does (both engines benefit)
    step, _ = tinybnn_step_fn(model, batch_size, variant="w1a1")
    with _limit_threads(threads):
        seconds = _time_steps(step, steps, warmup)
    result = {"model": model, "batch_size": batch_size, "steps": steps, "threads": threads,
              "tinybnn_seconds_per_step": seconds,
              "tinybnn_images_per_s": batch_size / seconds,
              "torch_version": None, "torch_threads": None, "torch_seconds_per_step": None,
              "torch_images_per_s": None, "slowdown": None}
    if torch and model in TORCH_TWINS and torch_available():
        import torch as _torch

        torch_step, _ = torch_step_fn(batch_size)
        previous = _torch.get_num_threads()
        if threads is not None:
            _torch.set_num_threads(threads)
        try:
            torch_seconds = _time_steps(torch_step, steps, warmup)
            used = _torch.get_num_threads()
        finally:
            _torch.set_num_threads(previous)
        result.update(torch_version=_torch.__version__, torch_threads=used,
                      torch_seconds_per_step=torch_seconds,
                      torch_images_per_s=batch_size / torch_seconds,
                      slowdown=seconds / torch_seconds)
    result["cpu_count"] = os.cpu_count()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Training-step speed of a W1A1 network: "
                                                 "tinybnn vs PyTorch on the CPU.")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both engines (default: each library's default)")
    parser.add_argument("--no-torch", action="store_true", help="time tinybnn only")
    args = parser.parse_args(argv)
    result = bench_train(args.model, args.batch_size, args.steps, args.warmup,
                         torch=not args.no_torch, threads=args.threads)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
