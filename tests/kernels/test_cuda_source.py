"""The CUDA source without a GPU: nvcc compiles it for sm_80 / sm_90, and the very same kernels,
compiled by g++ with cpu_harness/cuda_on_cpu.h, agree bit for bit with the NumPy reference.

(The public API's backend="cupy" path also runs on this harness in test_gemm.py and test_conv.py,
through the "cuda-on-cpu" backend fixture.)
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinybnn.kernels import gpu, pack_bits, reference, unpack_bits
from tinybnn.kernels.gpu import KERNEL_SOURCE

from .references import random_real


def _nvcc():
    """nvcc on the PATH, or in CUDA_HOME / the usual install places; None if absent."""
    found = shutil.which("nvcc")
    if found:
        return found
    homes = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"] + sorted(
        str(p) for p in Path("/usr/local").glob("cuda-*"))
    for home in homes:
        candidate = Path(home) / "bin" / "nvcc"
        if home and candidate.exists():
            return str(candidate)
    return None


needs_nvcc = pytest.mark.skipif(_nvcc() is None, reason="nvcc is not installed (no CUDA toolkit): "
                                                        "cannot compile xnor.cu")


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_the_kernels(tmp_path, arch):
    cubin = tmp_path / f"xnor_{arch}.cubin"
    result = subprocess.run([_nvcc(), f"-arch={arch}", "-cubin", "-Werror", "all-warnings",
                             str(KERNEL_SOURCE), "-o", str(cubin)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert cubin.stat().st_size > 0


@needs_nvcc
def test_popcount_is_the_hardware_instruction(tmp_path):
    ptx = tmp_path / "xnor.ptx"
    result = subprocess.run([_nvcc(), "-arch=sm_80", "--ptx", str(KERNEL_SOURCE), "-o", str(ptx)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = ptx.read_text()
    assert "popc.b64" in text
    for name, kinds in gpu.SIGNATURES.items():
        # every kernel is there, unmangled (extern "C"), with the parameters gpu.py passes
        entry = re.search(rf"\.entry {name}\((.*?)\)", text, re.S)
        assert entry is not None, f"kernel {name} missing"
        assert entry.group(1).count(".param") == len(kinds), name


def test_the_tile_size_of_gpu_py_is_the_one_of_the_cuda_source():
    assert re.search(r"#define TILE (\d+)", KERNEL_SOURCE.read_text()).group(1) == str(gpu.TILE)


@pytest.mark.parametrize("rows, length", [(1, 1), (3, 64), (5, 100), (70, 130)])
def test_pack_rows_on_the_harness(cuda_on_cpu, rows, length):
    x = random_real(np.random.default_rng(length), (rows, length))
    np.testing.assert_array_equal(cuda_on_cpu.pack_rows(x >= 0), pack_bits(x))


@pytest.mark.parametrize("m, n, k", [(1, 1, 5), (17, 15, 64), (33, 40, 1100), (16, 16, 2048)])
def test_xnor_gemm_on_the_harness(cuda_on_cpu, m, n, k):
    rng = np.random.default_rng(k)
    a, b = pack_bits(random_real(rng, (m, k))), pack_bits(random_real(rng, (n, k)))
    np.testing.assert_array_equal(cuda_on_cpu.xnor_gemm(a, b, k), reference.xnor_gemm(a, b, k))


@pytest.mark.parametrize("kernel, stride", [((3, 3), (1, 1)), ((3, 3), (2, 2)), ((2, 5), (1, 3))])
def test_im2col_pack_on_the_harness(cuda_on_cpu, kernel, stride):
    bits = np.random.default_rng(1).random((2, 9, 7, 11)) < 0.5
    np.testing.assert_array_equal(cuda_on_cpu.im2col_pack(bits, *kernel, stride),
                                  reference.im2col_bits(bits, *kernel, stride))


def test_harness_launcher_rejects_arrays_of_the_wrong_dtype(cuda_on_cpu):
    a = np.zeros((2, 1), np.int64)
    with pytest.raises(TypeError, match="expected a C-contiguous uint64 array, got int64"):
        cuda_on_cpu.launch("xnor_gemm", (1, 1, 1), (16, 16, 1),
                           (a, a, np.zeros((2, 2), np.int32), 2, 2, 1, 64))


@pytest.mark.gpu
def test_cupy_raw_module_compiles_and_runs_on_the_gpu():
    reason = gpu.cupy_error()
    if reason is not None:
        pytest.skip(f"no GPU: {reason}")
    import cupy
    rng = np.random.default_rng(0)
    a, b = pack_bits(random_real(rng, (100, 300))), pack_bits(random_real(rng, (50, 300)))
    ops = gpu.CudaOps(gpu.CupyLauncher(), cupy)
    dots = ops.xnor_gemm(cupy.asarray(a), cupy.asarray(b), 300)
    np.testing.assert_array_equal(dots.get(), reference.xnor_gemm(a, b, 300))


@pytest.mark.parametrize("axis", [0, -1])
def test_pack_and_unpack_of_device_arrays_on_the_harness(cuda_on_cpu, axis):
    """CudaOps.pack_bits / unpack_bits (what pack_bits does for a CuPy array), with NumPy as xp."""
    x = random_real(np.random.default_rng(3), (70, 5) if axis == 0 else (5, 70))
    packed = cuda_on_cpu.pack_bits(x, axis % 2)
    np.testing.assert_array_equal(packed, pack_bits(x, axis=axis))
    np.testing.assert_array_equal(cuda_on_cpu.unpack_bits(packed, 70, axis % 2),
                                  unpack_bits(packed, 70, axis=axis))
