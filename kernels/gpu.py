"""The CuPy backend: the CUDA kernels of ``xnor.cu`` and the Python that launches them.

The launching code (``CudaOps``) talks to the kernels through a *launcher*, a callable
``launch(name, grid, block, args)``, and allocates with an array module ``xp``:

* on a GPU: ``CupyLauncher`` (``cupy.RawModule`` compiled from xnor.cu by NVRTC) and ``cupy``;
* on the CPU: ``harness.CpuLauncher`` (the same xnor.cu compiled by g++ with
  cpu_harness/cuda_on_cpu.h) and ``numpy`` - how the tests run this module without a GPU.

CuPy is imported lazily: importing tinybnn.kernels never needs it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tinybnn.errors import ConfigError

from .pack import n_words

#: the CUDA source of every kernel below
KERNEL_SOURCE = Path(__file__).with_name("xnor.cu")
#: xnor_gemm's tile: blocks of TILE x TILE threads (must match ``#define TILE`` in xnor.cu)
TILE = 16
#: threads per block of the one-dimensional (grid-stride) kernels
THREADS = 256

#: kernel name -> C parameter types in order ("u64*" is a pointer to unsigned long long, ...)
SIGNATURES = {
    "pack_rows": ("u8*", "int", "int", "int", "u64*"),
    "im2col_pack": ("u8*",) + ("int",) * 11 + ("u64*",),
    "xnor_gemm": ("u64*", "u64*", "int*", "int", "int", "int", "int"),
    "conv_epilogue_dots": ("int*", "int*", "int", "int", "int", "int*"),
    "conv_epilogue_affine": ("int*", "int*", "float*", "float*", "int", "int", "int", "float*"),
    "conv_epilogue_threshold": ("int*", "int*", "int*", "int*", "int", "int", "int", "int", "int",
                                "u64*"),
}
#: the NumPy dtype each pointer type points to
POINTER_DTYPES = {"u8*": np.uint8, "u64*": np.uint64, "int*": np.int32, "float*": np.float32}


class CudaOps:
    """The GPU backend's operations, written once for any launcher and array module.

    Args:
        launch: ``launch(name, grid, block, args)`` runs kernel ``name`` of xnor.cu.
        xp: the array module of the kernels' arrays (cupy, or numpy for the CPU harness).
        max_blocks: cap on the grid of the grid-stride kernels (their loops cover the rest).
    """

    def __init__(self, launch, xp, max_blocks: int = 4096):
        self.launch = launch
        self.xp = xp
        self.max_blocks = max_blocks

    def _grid(self, total: int) -> tuple[int, int, int]:
        return (max(1, min(self.max_blocks, -(-total // THREADS))), 1, 1)

    def pack_rows(self, bits):
        """(R, L) bool/0-1 -> (R, ceil(L/64)) uint64, packed along the rows."""
        rows, length = bits.shape
        words = n_words(length)
        packed = self.xp.empty((rows, words), dtype=np.uint64)
        source = self.xp.ascontiguousarray(bits).astype(np.uint8, copy=False)
        self.launch("pack_rows", self._grid(rows * words), (THREADS, 1, 1),
                    (source, rows, length, words, packed))
        return packed

    def pack_bits(self, x, axis: int):
        """``pack.pack_bits`` for arrays of ``xp``: binarize (sign(0) = +1) and pack ``axis``."""
        xp = self.xp
        bits = x if x.dtype == np.bool_ else x >= 0
        moved = xp.moveaxis(bits, axis, -1)
        packed = self.pack_rows(moved.reshape(-1, moved.shape[-1]))
        packed = packed.reshape(moved.shape[:-1] + (packed.shape[-1],))
        return xp.ascontiguousarray(xp.moveaxis(packed, -1, axis))

    def unpack_bits(self, packed, k: int, axis: int):
        """``pack.unpack_bits`` for the arrays of ``xp``: ±1 float32 values, length ``k``."""
        xp = self.xp
        moved = xp.moveaxis(packed, axis, -1)
        shifts = xp.arange(64, dtype=np.uint64)
        bits = (moved[..., None] >> shifts) & np.uint64(1)       # (..., words, 64)
        bits = bits.reshape(moved.shape[:-1] + (-1,))[..., :k]
        values = xp.where(bits == 1, np.float32(1), np.float32(-1)).astype(np.float32)
        return xp.ascontiguousarray(xp.moveaxis(values, -1, axis))

    def xnor_gemm(self, a, b, k: int):
        """(M, W) x (N, W) uint64 -> (M, N) int32 dots."""
        m, words = a.shape
        n = b.shape[0]
        dots = self.xp.empty((m, n), dtype=np.int32)
        if m and n:
            grid = (-(-n // TILE), -(-m // TILE), 1)
            self.launch("xnor_gemm", grid, (TILE, TILE, 1),
                        (self.xp.ascontiguousarray(a), self.xp.ascontiguousarray(b), dots, m, n,
                         words, int(k)))
        return dots

    def im2col_pack(self, bits, kh: int, kw: int, stride):
        """(B, C, Hp, Wp) bool padded bit map -> (B*Ho*Wo, ceil(C*kh*kw/64)) uint64 patches."""
        batch, channels, height, width = bits.shape
        out_h = (height - kh) // stride[0] + 1
        out_w = (width - kw) // stride[1] + 1
        words = n_words(channels * kh * kw)
        patches = self.xp.empty((batch * out_h * out_w, words), dtype=np.uint64)
        source = self.xp.ascontiguousarray(bits).astype(np.uint8, copy=False)
        self.launch("im2col_pack", self._grid(patches.size), (THREADS, 1, 1),
                    (source, batch, channels, height, width, kh, kw, stride[0], stride[1], out_h,
                     out_w, words, patches))
        return patches

    def binary_conv2d(self, bits, w_packed, kh: int, kw: int, stride, epilogue):
        """As ``reference.binary_conv2d``: im2col + pack, GEMM, then the output stage."""
        xp = self.xp
        batch, channels, height, width = bits.shape
        out_h = (height - kh) // stride[0] + 1
        out_w = (width - kw) // stride[1] + 1
        positions = out_h * out_w
        n = w_packed.shape[0]
        dots = self.xnor_gemm(self.im2col_pack(bits, kh, kw, stride), w_packed,
                              channels * kh * kw)
        correction = xp.asarray(np.ascontiguousarray(epilogue.correction, dtype=np.int32))
        if epilogue.kind == "threshold":
            words = n_words(out_w)
            out = xp.empty((batch, n, out_h, words), dtype=np.uint64)
            self.launch("conv_epilogue_threshold", self._grid(out.size), (THREADS, 1, 1),
                        (dots, correction, xp.asarray(epilogue.flip),
                         xp.asarray(epilogue.threshold), batch, n, out_h, out_w, words, out))
            return out
        if epilogue.kind == "affine":
            out = xp.empty((batch, n, out_h, out_w), dtype=np.float32)
            self.launch("conv_epilogue_affine", self._grid(out.size), (THREADS, 1, 1),
                        (dots, correction, xp.asarray(epilogue.scale), xp.asarray(epilogue.bias),
                         batch, n, positions, out))
            return out
        out = xp.empty((batch, n, out_h, out_w), dtype=np.int32)
        self.launch("conv_epilogue_dots", self._grid(out.size), (THREADS, 1, 1),
                    (dots, correction, batch, n, positions, out))
        return out


class CupyLauncher:
    """Runs the kernels of xnor.cu on the GPU through ``cupy.RawModule`` (compiled by NVRTC)."""

    def __init__(self):
        import cupy
        self.cupy = cupy
        self.module = cupy.RawModule(code=KERNEL_SOURCE.read_text())

    def __call__(self, name: str, grid, block, args) -> None:
        kernel = self.module.get_function(name)
        kernel(tuple(grid), tuple(block), tuple(_cupy_argument(self.cupy, kind, value, name)
                                                for kind, value in zip(SIGNATURES[name], args)))


def _cupy_argument(cupy, kind: str, value, kernel: str):
    """One kernel argument in the form CuPy passes it: a device array or a sized scalar."""
    if kind.endswith("*"):
        dtype = POINTER_DTYPES[kind]
        if value.dtype != dtype or not value.flags.c_contiguous:
            raise TypeError(f"{kernel}: expected a C-contiguous {np.dtype(dtype)} array, got "
                            f"{value.dtype}")
        return cupy.asarray(value)
    return np.float32(value) if kind == "float" else np.int32(value)


# --------------------------------------------------------------------------------------------
# the entry points gemm.py and conv.py call for backend="cupy"
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def cupy_error() -> str | None:
    """Why the cupy backend cannot run here (None when it can)."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda12x)"
    except Exception as e:                          # a broken CUDA install fails at import
        return f"CuPy failed to import ({e})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return f"CuPy found no usable CUDA device ({e})"
    if count == 0:
        return "CuPy found no CUDA device"
    return None


@functools.lru_cache(maxsize=1)
def _cupy_ops() -> CudaOps:
    reason = cupy_error()
    if reason is not None:
        raise ConfigError(f"backend 'cupy' is not available: {reason}")
    import cupy
    return CudaOps(CupyLauncher(), cupy)


def pack_bits(x, axis: int):
    """``pack_bits`` of a CuPy array, on its device."""
    return _cupy_ops().pack_bits(x, axis)


def unpack_bits(packed, k: int, axis: int):
    """``unpack_bits`` of a CuPy array, on its device."""
    return _cupy_ops().unpack_bits(packed, k, axis)


def xnor_gemm(a, b, k: int):
    """The cupy backend of ``xnor_gemm``: the result lives where ``a`` lives."""
    ops = _cupy_ops()
    dots = ops.xnor_gemm(ops.xp.asarray(a), ops.xp.asarray(b), k)
    return dots if _on_device(a) else _to_host(dots)


def binary_conv2d(bits, w_packed, kh: int, kw: int, stride, epilogue):
    """The cupy backend of ``binary_conv2d``: the result lives where ``bits`` (x) lives."""
    ops = _cupy_ops()
    out = ops.binary_conv2d(ops.xp.asarray(bits), ops.xp.asarray(w_packed), kh, kw, stride,
                            epilogue)
    return out if _on_device(bits) else _to_host(out)


def _on_device(array) -> bool:
    """True for a CuPy array (it has ``.get()``, the copy to the host)."""
    return hasattr(array, "get")


def _to_host(array):
    return array.get() if _on_device(array) else array
