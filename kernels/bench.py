"""Speed of the Numba XNOR-popcount GEMM against float32 ``numpy.matmul``.

Both multiply the same ±1 matrices: ``numpy.matmul`` the float32 (M, K) x (K, N) product, the
``xnor_gemm`` of the Numba backend the same matrices packed into uint64 words (weights are packed
once at export, activations by the convolution's fused im2col, so packing is not timed here).
The shapes are the im2col GEMMs of the binary 3x3 convolutions of three CIFAR networks with
batch 128: M = 128*H*W output positions, K = 9*C input taps, N = C output channels.

To keep every measurement short, large layers are timed on their first ``M_timed`` rows (a
multiple of 64); both products use the same rows, so the ratio compares the same work. Each
product is timed after a pause and a warm-up call, at least ``repeats`` times and for at least
``MIN_SECONDS``, and its best time is kept (the least disturbed by other processes); both use
all cores (OpenBLAS / Numba threads). Timings are reported, never asserted.
Run it on an idle machine: when other processes keep the cores busy, a parallel kernel often
waits a whole scheduler time slice (several ms) for one of its threads, and the short xnor
kernels suffer most.

Run it with ``tinybnn bench kernels`` or ``python -m tinybnn.kernels.bench [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: (network, layer, M, K, N) of each binary 3x3 convolution shape, batch 128
SHAPES = [
    ("ResNet-20", "16ch 32x32", 128 * 32 * 32, 9 * 16, 16),
    ("ResNet-20", "32ch 16x16", 128 * 16 * 16, 9 * 32, 32),
    ("ResNet-20", "64ch 8x8", 128 * 8 * 8, 9 * 64, 64),
    ("ResNet-18", "64ch 32x32", 128 * 32 * 32, 9 * 64, 64),
    ("ResNet-18", "128ch 16x16", 128 * 16 * 16, 9 * 128, 128),
    ("ResNet-18", "256ch 8x8", 128 * 8 * 8, 9 * 256, 256),
    ("ResNet-18", "512ch 4x4", 128 * 4 * 4, 9 * 512, 512),
    ("VGG-Small", "128ch 32x32", 128 * 32 * 32, 9 * 128, 128),
    ("VGG-Small", "256ch 16x16", 128 * 16 * 16, 9 * 256, 256),
    ("VGG-Small", "512ch 8x8", 128 * 8 * 8, 9 * 512, 512),
]

#: multiply-adds per timed float product (about 10 ms at 200 GFLOPS); quick mode: 8x fewer
MACS_PER_MEASUREMENT = 1_000_000_000
#: seconds to wait before timing one library, so that the other one's threads stop spinning
PAUSE_SECONDS = 0.2
#: keep timing a product until this many seconds were spent on it (at least ``repeats`` calls)
MIN_SECONDS = 0.1


def bench_kernels(repeats: int = 5, quick: bool = False) -> list[dict]:
    """Time ``xnor_gemm`` (numba) against float32 ``numpy.matmul`` at every shape of ``SHAPES``.

    Args:
        repeats: timed runs of each product per shape (the best is kept).
        quick: 8x fewer rows per measurement and at most 3 repeats (a smoke run).

    Returns:
        one dict per shape: network, layer, M, M_timed, K, N, float_ms, xnor_ms, ratio
        (float time / xnor time), xnor_gops (binary ops 2*M*N*K per second, in 1e9), float_gflops,
        exact (whether the two products agreed exactly).
    """
    from .gemm import xnor_gemm
    from .pack import pack_bits

    budget = MACS_PER_MEASUREMENT // (8 if quick else 1)
    repeats = max(1, min(repeats, 3) if quick else repeats)
    rng = np.random.default_rng(0)
    results = []
    for network, layer, m, k, n in SHAPES:
        rows = min(m, max(64, budget // (n * k) // 64 * 64))
        a = _random_signs(rng, (rows, k))
        b = _random_signs(rng, (k, n))
        a_packed, b_packed = pack_bits(a), pack_bits(b.T)
        exact = np.array_equal(xnor_gemm(a_packed, b_packed, k, backend="numba"), a @ b)
        t_float = _best_of(repeats, lambda: a @ b)
        t_xnor = _best_of(repeats, lambda: xnor_gemm(a_packed, b_packed, k, backend="numba"))
        ops = 2.0 * rows * n * k
        results.append({
            "network": network, "layer": layer, "M": m, "M_timed": rows, "K": k, "N": n,
            "float_ms": 1e3 * t_float, "xnor_ms": 1e3 * t_xnor, "ratio": t_float / t_xnor,
            "xnor_gops": ops / t_xnor / 1e9, "float_gflops": ops / t_float / 1e9,
            "exact": bool(exact),
        })
    return results


def format_table(results: list[dict]) -> str:
    """The results of ``bench_kernels`` as a text table with the median ratio at the end."""
    header = (f"{'network':<10} {'layer':<12} {'M':>7} {'timed':>7} {'K':>5} {'N':>4} "
              f"{'float ms':>9} {'xnor ms':>8} {'ratio':>6} {'xnor GOPS':>9} {'float GFLOPS':>12}")
    lines = [header, "-" * len(header)]
    for r in results:
        flag = "" if r["exact"] else "  NOT EXACT"
        lines.append(f"{r['network']:<10} {r['layer']:<12} {r['M']:>7} {r['M_timed']:>7} "
                     f"{r['K']:>5} {r['N']:>4} {r['float_ms']:>9.2f} {r['xnor_ms']:>8.3f} "
                     f"{r['ratio']:>5.1f}x {r['xnor_gops']:>9.0f} {r['float_gflops']:>12.0f}{flag}")
    ratios = [r["ratio"] for r in results]
    if ratios:
        lines.append(f"median ratio {np.median(ratios):.1f}x (min {min(ratios):.1f}x, max "
                     f"{max(ratios):.1f}x): xnor_gemm (numba) vs float32 numpy.matmul, same "
                     f"±1 matrices")
    return "\n".join(lines)


def _random_signs(rng, shape) -> np.ndarray:
    return np.where(rng.random(shape, dtype=np.float32) < 0.5, -1.0, 1.0).astype(np.float32)


def _best_of(repeats: int, run) -> float:
    """The fastest timed call of ``run``, after a pause and a warm-up call: at least ``repeats``
    calls, and more (up to 1000) until ``MIN_SECONDS`` have been spent, so that fast kernels get
    enough tries to find an undisturbed one.

    The pause matters on a machine with few cores: OpenBLAS and Numba's OpenMP threads keep
    spinning for a while after their last task, and if the other library's threads are still
    spinning they take cores away from the one being timed.
    """
    time.sleep(PAUSE_SECONDS)
    run()
    best, spent, calls = float("inf"), 0.0, 0
    while calls < repeats or (spent < MIN_SECONDS and calls < 1000):
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        best, spent, calls = min(best, seconds), spent + seconds, calls + 1
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(format_table(bench_kernels(repeats=args.repeats, quick=args.quick)))


if __name__ == "__main__":
    main()
