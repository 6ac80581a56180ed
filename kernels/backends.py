"""Which backend runs a kernel: "numpy" (reference), "numba" (fast CPU) or "cupy" (CUDA GPU).

``backend=None`` picks "cupy" when the inputs are CuPy arrays and "numba" otherwise. Asking for a
backend this machine cannot run raises ConfigError with the reason and the fix.
"""

from __future__ import annotations

from tinybnn.errors import ConfigError

from .pack import _is_cupy

BACKENDS = ("numpy", "numba", "cupy")


def available_backends() -> list[str]:
    """The backends this machine can run, fastest CPU one first: e.g. ["numba", "numpy"]."""
    names = []
    if _numba_error() is None:
        names.append("numba")
    names.append("numpy")
    from . import gpu
    if gpu.cupy_error() is None:
        names.insert(0, "cupy")
    return names


def resolve_backend(backend, *arrays) -> str:
    """The backend name to use for ``arrays``; ConfigError when it is unknown or unavailable."""
    if backend is None:
        backend = "cupy" if any(_is_cupy(a) for a in arrays) else "numba"
    if backend not in BACKENDS:
        raise ConfigError(f"unknown kernel backend {backend!r}; valid backends: "
                          f"{', '.join(BACKENDS)}")
    if backend == "numba" and _numba_error() is not None:
        raise ConfigError(f"backend 'numba' is not available ({_numba_error()}); install numba "
                          f"or pass backend='numpy'")
    if backend == "cupy":
        from . import gpu
        reason = gpu.cupy_error()
        if reason is not None:
            raise ConfigError(f"backend 'cupy' is not available: {reason}; use backend='numba' "
                              f"(CPU) instead")
    if backend != "cupy" and any(_is_cupy(a) for a in arrays):
        raise ConfigError(f"backend {backend!r} runs on the CPU but got CuPy arrays; move them "
                          f"with cupy.asnumpy(...) or use backend='cupy'")
    return backend


def _numba_error():
    try:
        import numba  # noqa: F401
    except ImportError as e:
        return f"numba cannot be imported: {e}"
    return None
