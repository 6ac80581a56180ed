"""Array-module selection: NumPy on the CPU, CuPy on a GPU.

Functions never import ``numpy`` for their math; they ask ``xp = get_array_module(x)`` and use
``xp.exp``, ``xp.matmul``, ... so the same code runs on both. CuPy is optional and imported lazily.
"""

from __future__ import annotations

import numpy as np


def _is_cupy_array(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if _is_cupy_array(a):
            import cupy

            return cupy
    return np


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDA driver errors on machines without a GPU
        return False


def to_numpy(x) -> np.ndarray:
    """A NumPy copy of ``x`` (no copy when it already is a NumPy array)."""
    if _is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def to_device(x, device: str):
    """Move an array to ``"cpu"`` or ``"cuda"``."""
    from .errors import ConfigError

    if device == "cpu":
        return to_numpy(x)
    if device == "cuda":
        if not cupy_available():
            raise ConfigError("device 'cuda' needs CuPy and a CUDA GPU; install tinybnn[gpu] on a "
                              "machine with a GPU, or use device='cpu'")
        import cupy

        return cupy.asarray(x)
    raise ConfigError(f"unknown device {device!r}; use 'cpu' or 'cuda'")


# ---------------------------------------------------------------------------------------------
# Process settings for speed on the CPU
# ---------------------------------------------------------------------------------------------

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def prefer_sleeping_numba_threads() -> str | None:
    """Start Numba's thread pool now, on OpenMP with the *passive* wait policy (idle threads
    sleep at once), unless the user chose a layer (``NUMBA_THREADING_LAYER``). Returns the
    layer started, or None when the user's choice (or an earlier launch) was kept.

    tinybnn's fused training kernels and bit-packed kernels use ``prange``. Measured on this
    project's 2-core machine (``python -m tinybnn.bench_train --no-torch``, the exported
    ResNet-20 of ``tinybnn bench infer``):

    * OpenMP with its default policy keeps its threads spinning for a while after every kernel;
      with as many busy threads as cores (BLAS, another process) they take the cores from the
      threads doing the work: a training step took 0.94 s with one core busy;
    * Numba's "workqueue" pool sleeps, but its launches cost ~0.2 ms and their time varied a
      lot: the exported ResNet-20 took 44-79 ms per batch (median 57-77), a step 0.67 s busy;
    * OpenMP with ``OMP_WAIT_POLICY=PASSIVE``: 44-54 ms per batch (median 48.7), a step
      0.38-0.39 s quiet (workqueue 0.42-0.45 s) and 0.64 s with one core busy.

    The policy is set only while Numba loads its OpenMP library (libgomp reads it once, when it
    is loaded), then the environment is restored, so that a library loaded later (PyTorch's own
    OpenMP, in the benchmarks) keeps its defaults; a policy the user set is left as it is.
    Where Numba's OpenMP layer cannot load, the workqueue pool is started instead (and chosen
    for Numba's first launch where Numba lacks the internal ``_launch_threads`` used here).
    Limits of OpenMP: a child process *forked* after this import must not run parallel kernels
    (libgomp is not fork-safe; Numba stops such a child with an error); use the "spawn" start
    method, or set ``NUMBA_THREADING_LAYER=workqueue`` before importing tinybnn.
    Called when tinybnn is imported; it has no effect after Numba's first parallel launch.
    """
    import os

    if "NUMBA_THREADING_LAYER" in os.environ:
        return None
    import numba
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False):     # the pool runs already
        return None
    if not hasattr(parallel, "_launch_threads"):       # a Numba without this internal: let it
        numba.config.THREADING_LAYER = "workqueue"     # start its sleeping pool on first use
        return "workqueue"
    saved = os.environ.get("OMP_WAIT_POLICY")
    if saved is None:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        for layer in ("omp", "workqueue"):
            numba.config.THREADING_LAYER = layer
            try:
                parallel._launch_threads()
            except ValueError:                         # this layer's library did not load
                continue
            return layer
        return None
    finally:
        if saved is None:
            del os.environ["OMP_WAIT_POLICY"]


#: the LLVM tuning flag that keeps loops on 256-bit vectors on AVX-512 CPUs
_PREFER_256 = "prefer-256-bit"


def prefer_wide_vectors() -> bool:
    """Let Numba's compiler vectorize loops with 512-bit registers on a CPU with AVX-512, unless
    the user set ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES``. Returns True when it did.

    LLVM's tuning for Intel's AVX-512 server CPUs (Skylake-X to Sapphire Rapids) carries the
    flag "prefer-256-bit": loops are vectorized 4 x 64 or 8 x 32 bits wide although the
    registers hold twice as much. tinybnn's packed kernels are bound by ``vpopcntq`` and by
    their float32 output stages, which run as fast per instruction on 512-bit registers (one
    popcount port either way), so twice the lanes is up to twice the speed: the exported W1A1
    ResNet-20's binary convolutions measured 1.2-1.3x faster with the flag off. This passes
    Numba the host's features plus "-prefer-256-bit" (the ``NUMBA_CPU_FEATURES`` variable).
    What it changes in results: only the float64 sums of training-mode batch norm
    (``functional/fused.py`` lets LLVM split them into vector lanes), in their last bits, as
    running on a CPU without AVX-512 changes them too. The convolutions, the eval-mode ops and the export never let the
    compiler reorder a float sum, and integer sums are exact in any order.
    Called when tinybnn is imported; it only has an effect before Numba compiles its first
    function (the compiler is configured once per process; Numba's cache keeps the kernels
    compiled for each feature set apart).
    """
    import os
    import sys

    if "NUMBA_CPU_FEATURES" in os.environ or "NUMBA_CPU_NAME" in os.environ:
        return False
    try:
        import llvmlite.binding as llvm
        features = llvm.get_host_cpu_features()
    except (ImportError, RuntimeError):                # no LLVM, or features unknown
        return False
    if not features.get("avx512f", False):
        return False
    setting = f"{features.flatten()},-{_PREFER_256}"
    os.environ["NUMBA_CPU_FEATURES"] = setting
    if "numba" in sys.modules:                          # imported already: it has read the env
        sys.modules["numba"].config.CPU_FEATURES = setting
    return True


def reuse_freed_memory() -> bool:
    """Let glibc keep freed memory of up to 32 MiB blocks for reuse instead of returning it to
    the operating system. Returns True when the setting was made (Linux with glibc).

    A training step allocates and frees the same large activation arrays every step. By default
    glibc hands every block over 128 KiB back to the kernel when it is freed, so the next step
    pays a page fault (and the zeroing of a page) for every 4 KiB it writes: about 60,000 faults
    per W1A1 ResNet-20 step, 10–25% of the step time. Raising the mmap and trim thresholds (as
    ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824`` would) keeps those blocks
    in the process. It is a process-wide setting, so tinybnn makes it only in its own entry
    points (the ``tinybnn`` command, :func:`tinybnn.train.fit`, the benchmarks), never on import.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):                    # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) and mallopt(_M_TRIM_THRESHOLD, 2**30))
