"""Speed benchmarks, reported as ratios measured in one run (never asserted in tests).

``bench_conv`` times ``conv2d`` forward + backward (gradients of the input and the weight) at the
3×3 convolution shapes of a CIFAR ResNet-20 with batch 128, and PyTorch's CPU convolution on the
same arrays when torch is installed. Both sides get the same number of threads. Each side runs its
repeats as one block after a pause (BLAS and OpenMP worker threads keep spinning for a while after
a call and would slow the other side down); the blocks alternate for a few rounds, so that a busy
moment on the machine hurts both sides alike, and the best repeat of each side is kept: the one
least disturbed by other processes.

Run it with ``python -m tinybnn.bench`` (options: ``--repeats``, ``--threads``).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

# (label, batch, in channels, out channels, input size, stride): the 3×3 convolutions of ResNet-20
RESNET20_SHAPES = [
    ("16->16 32x32 s1", 128, 16, 16, 32, 1),
    ("16->32 32x32 s2", 128, 16, 32, 32, 2),
    ("32->32 16x16 s1", 128, 32, 32, 16, 1),
    ("32->64 16x16 s2", 128, 32, 64, 16, 2),
    ("64->64 8x8 s1", 128, 64, 64, 8, 1),
]


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


@contextlib.contextmanager
def _tinybnn_threads(threads: int):
    """Run tinybnn's chunked kernels, and BLAS, with ``threads`` threads."""
    from .functional import parallel

    previous, parallel.NUM_THREADS = parallel.NUM_THREADS, threads
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=threads, user_api="blas")
    try:
        with limits:
            yield
    finally:
        parallel.NUM_THREADS = previous


def _time_tinybnn(x, w, grad, stride: int) -> float:
    from .autograd import Tensor
    from .functional.conv import conv2d

    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    start = time.perf_counter()
    y = conv2d(xt, wt, None, stride=stride, padding=1)
    y.backward(grad)
    return time.perf_counter() - start


def _time_torch(torch, x, w, grad, stride: int) -> float:
    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w).requires_grad_(True)
    g = torch.from_numpy(grad)
    start = time.perf_counter()
    y = torch.nn.functional.conv2d(xt, wt, None, stride=stride, padding=1)
    y.backward(g)
    return time.perf_counter() - start


def _best_of(repeats: int, run) -> float:
    """The fastest of ``repeats`` timed runs, after a pause and one warm-up run."""
    time.sleep(0.2)
    run()
    return min(run() for _ in range(repeats))


def bench_conv(repeats: int = 5, threads: int | None = None, shapes=None, rounds: int = 3,
               seed: int = 0) -> list[dict]:
    """Time conv2d forward + backward against PyTorch's CPU convolution (when installed).

    Args:
        repeats: timed repeats per block (after one warm-up); the best of all is kept.
        threads: threads for both sides; default: every CPU this process may use.
        shapes: list of (label, N, C, O, size, stride); default :data:`RESNET20_SHAPES`.
        rounds: blocks of repeats per side, alternating between the two sides.
    Returns:
        One dict per shape: ``label``, ``tinybnn_ms``, ``torch_ms`` (None without torch) and
        ``ratio`` = tinybnn / torch (None without torch), plus ``threads``.
    """
    from .functional.parallel import num_threads

    threads = threads or num_threads()
    torch = _import_torch()
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    rows = []
    for label, n, c, o, size, stride in shapes or RESNET20_SHAPES:
        x = rng.standard_normal((n, c, size, size), dtype=np.float32)
        w = rng.standard_normal((o, c, 3, 3), dtype=np.float32) * np.float32(0.1)
        out = (size + 2 - 3) // stride + 1
        grad = rng.standard_normal((n, o, out, out), dtype=np.float32)
        ours = theirs = float("inf")
        for _ in range(rounds):
            with _tinybnn_threads(threads):
                ours = min(ours, _best_of(repeats, lambda: _time_tinybnn(x, w, grad, stride)))
            if torch is not None:
                theirs = min(theirs, _best_of(repeats,
                                              lambda: _time_torch(torch, x, w, grad, stride)))
        theirs = None if torch is None else theirs
        rows.append({"label": label, "threads": threads, "tinybnn_ms": 1e3 * ours,
                     "torch_ms": None if theirs is None else 1e3 * theirs,
                     "ratio": None if theirs is None else ours / theirs})
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table of :func:`bench_conv` results."""
    threads = rows[0]["threads"] if rows else "?"
    lines = [f"{f'conv2d fwd+bwd, {threads} threads':<28}{'tinybnn ms':>12}{'torch ms':>12}"
             f"{'ratio':>8}"]
    for row in rows:
        torch_ms = "-" if row["torch_ms"] is None else f"{row['torch_ms']:.1f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"{row['label']:<28}{row['tinybnn_ms']:>12.1f}{torch_ms:>12}{ratio:>8}")
    return "\n".join(lines)


def main(argv=None) -> None:
    import argparse

    from .backend import reuse_freed_memory

    parser = argparse.ArgumentParser(description="conv2d forward+backward vs PyTorch CPU")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    reuse_freed_memory()                # as the ``tinybnn`` command does (a whole process)
    print(format_table(bench_conv(args.repeats, args.threads, rounds=args.rounds)))


if __name__ == "__main__":
    main()
