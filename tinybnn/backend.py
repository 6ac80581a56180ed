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
