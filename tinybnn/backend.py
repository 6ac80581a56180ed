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


def prefer_sleeping_numba_threads() -> None:
    """Run Numba's parallel kernels on its "workqueue" thread pool unless the user chose a layer
    (``NUMBA_THREADING_LAYER``).

    tinybnn's fused training kernels and bit-packed kernels use ``prange``. Numba's default
    OpenMP pool keeps its threads spinning for a while after every kernel; on a machine with as
    many busy threads as cores (the convolution's thread pool, BLAS, another process) they take
    the cores from the threads doing the work, and a training step was measured 1.3–1.5× slower.
    The workqueue pool's idle threads sleep. Its one limit: two Python threads must not launch
    parallel kernels at the same time (tinybnn launches them only from the calling thread).
    Called when tinybnn is imported; it only has an effect before Numba's first parallel launch.
    """
    import os
    import sys

    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
    if "numba" in sys.modules:                          # imported already: it has read the env
        sys.modules["numba"].config.THREADING_LAYER = "workqueue"


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
