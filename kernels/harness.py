"""Run the CUDA kernels of xnor.cu on the CPU: "GPU without a GPU".

``build_cpu_harness`` compiles ``cpu_harness/launcher.cpp`` (which includes
``cpu_harness/cuda_on_cpu.h`` and ``xnor.cu``) with g++ and OpenMP into a shared library;
``CpuLauncher`` calls its ``launch_<kernel>`` functions through ctypes. Together with
``gpu.CudaOps(CpuLauncher(...), numpy)`` the whole cupy backend - kernels and launch code - runs
on a machine without a GPU, and the tests compare it bit for bit with the NumPy reference.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinybnn.errors import ConfigError

from .gpu import KERNEL_SOURCE, POINTER_DTYPES, SIGNATURES

HARNESS_DIR = Path(__file__).with_name("cpu_harness")
COMPILE_FLAGS = ("-std=c++17", "-fopenmp", "-O2", "-ffp-contract=off", "-shared", "-fPIC")

_C_TYPES = {"int": ctypes.c_int, "float": ctypes.c_float}


def gxx_path() -> str | None:
    """The g++ executable, or None when there is none on the PATH."""
    return shutil.which("g++")


def build_cpu_harness(build_dir=None) -> Path:
    """Compile the CPU harness; returns the path of the shared library.

    Args:
        build_dir: where to write it (default: a new temporary directory).

    Raises:
        ConfigError: no g++ on the PATH, or the compilation failed (its output in the message).
    """
    compiler = gxx_path()
    if compiler is None:
        raise ConfigError("the CPU harness needs g++ (with OpenMP); install it, e.g. "
                          "apt-get install g++")
    build_dir = Path(tempfile.mkdtemp(prefix="tinybnn_cuda_cpu_") if build_dir is None
                     else build_dir)
    library = build_dir / "xnor_cpu.so"
    command = [compiler, *COMPILE_FLAGS, f"-I{HARNESS_DIR}", f"-I{KERNEL_SOURCE.parent}",
               str(HARNESS_DIR / "launcher.cpp"), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"compiling the CPU harness failed ({' '.join(command)}):\n"
                          f"{result.stderr}")
    return library


class CpuLauncher:
    """``launch(name, grid, block, args)`` on the CPU, through the harness library.

    Arguments are checked against ``gpu.SIGNATURES``: pointers must be C-contiguous NumPy arrays
    of the right dtype (a wrong one would be read as garbage), scalars become C int / float.
    """

    def __init__(self, library_path):
        self.library = ctypes.CDLL(str(library_path))
        self.functions = {}
        for name, kinds in SIGNATURES.items():
            function = getattr(self.library, f"launch_{name}")
            function.argtypes = [ctypes.POINTER(ctypes.c_uint)] * 2 + [
                ctypes.c_void_p if kind.endswith("*") else _C_TYPES[kind] for kind in kinds]
            function.restype = ctypes.c_int
            self.functions[name] = function

    def __call__(self, name: str, grid, block, args) -> None:
        function = self.functions[name]
        kinds = SIGNATURES[name]
        if len(args) != len(kinds):
            raise TypeError(f"{name} takes {len(kinds)} arguments, got {len(args)}")
        grid_c = (ctypes.c_uint * 3)(*grid)
        block_c = (ctypes.c_uint * 3)(*block)
        status = function(grid_c, block_c, *(_c_argument(kind, value, name)
                                             for kind, value in zip(kinds, args)))
        if status != 0:
            raise RuntimeError(f"{name}: OpenMP did not start the {int(np.prod(block))} threads "
                               f"of a block")


def _c_argument(kind: str, value, kernel: str):
    if kind.endswith("*"):
        dtype = POINTER_DTYPES[kind]
        if not isinstance(value, np.ndarray) or value.dtype != dtype \
                or not value.flags.c_contiguous:
            raise TypeError(f"{kernel}: expected a C-contiguous {np.dtype(dtype)} array, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
        return value.ctypes.data
    return value
