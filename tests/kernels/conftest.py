"""Fixtures of the kernel tests: every backend, including the CUDA kernels run on the CPU."""

import numpy as np
import pytest

from tinybnn.kernels import gpu, harness


@pytest.fixture(scope="session")
def cpu_harness_library(tmp_path_factory):
    """xnor.cu compiled for the CPU with cpu_harness/cuda_on_cpu.h (skips without g++)."""
    if harness.gxx_path() is None:
        pytest.skip("g++ is not installed: cannot run the CUDA kernels on the CPU harness")
    return harness.build_cpu_harness(tmp_path_factory.mktemp("cuda_on_cpu"))


@pytest.fixture
def cuda_on_cpu(cpu_harness_library):
    """gpu.CudaOps driving the harness library with NumPy arrays (small grids, to exercise the
    grid-stride loops)."""
    return gpu.CudaOps(harness.CpuLauncher(cpu_harness_library), np, max_blocks=3)


def _cupy_on_cpu(monkeypatch, ops):
    """Make backend="cupy" run the CPU harness: the public API's whole GPU path, without a GPU."""
    monkeypatch.setattr(gpu, "cupy_error", lambda: None)
    monkeypatch.setattr(gpu, "_cupy_ops", lambda: ops)


@pytest.fixture(params=["numpy", "numba", "cuda-on-cpu",
                        pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request, monkeypatch):
    """The name to pass as backend=; "cuda-on-cpu" passes "cupy" with the harness patched in."""
    if request.param == "cuda-on-cpu":
        ops = request.getfixturevalue("cuda_on_cpu")
        _cupy_on_cpu(monkeypatch, ops)
        return "cupy"
    if request.param == "cupy" and gpu.cupy_error() is not None:
        pytest.skip(f"no GPU: {gpu.cupy_error()}")
    return request.param
