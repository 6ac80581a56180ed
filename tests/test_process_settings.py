"""The process settings tinybnn makes for speed: Numba's OpenMP pool with sleeping threads and
512-bit vectors on AVX-512 CPUs (on import), glibc keeping freed memory (in tinybnn's entry
points). Each runs in a fresh interpreter, since they act once per process."""

import os
import subprocess
import sys

import pytest


def _run(code: str, env_extra=None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env.update(env_extra or {})
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


LAUNCH = """
import numpy as np, numba
from numba import njit, prange
@njit(parallel=True)
def total(a):
    s = 0.0
    for i in prange(a.size):
        s += a[i]
    return s
total(np.ones(1000))
print(numba.threading_layer())
"""

#: prints libgomp's wait policy (omp_display_env writes the OpenMP settings to stderr)
WAIT_POLICY = """
import ctypes, os, sys
print(os.environ.get("OMP_WAIT_POLICY"))
sys.stdout.flush()
ctypes.CDLL("libgomp.so.1").omp_display_env(0)
"""


def _layer_available(layer: str) -> bool:
    code = f"import numba; numba.config.THREADING_LAYER = {layer!r}; " \
           "from numba.np.ufunc import parallel; parallel._launch_threads()"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True).returncode == 0


OMP = pytest.mark.skipif(not _layer_available("omp"), reason="Numba's OpenMP layer cannot load")


@OMP
def test_import_starts_the_openmp_layer():
    assert _run("import tinybnn" + LAUNCH) == "omp"


@OMP
def test_import_after_numba_still_starts_the_openmp_layer():
    assert _run("import numba, tinybnn" + LAUNCH) == "omp"


@OMP
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU libgomp is Linux's")
def test_openmp_threads_sleep_but_the_environment_is_restored():
    done = subprocess.run([sys.executable, "-c", "import tinybnn" + WAIT_POLICY],
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items()
                               if k not in ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"     # a library loaded later sees no policy of ours
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in done.stderr


@OMP
def test_a_wait_policy_the_user_set_is_kept():
    done = subprocess.run([sys.executable, "-c", "import tinybnn" + WAIT_POLICY],
                          capture_output=True, text=True, timeout=300,
                          env={**{k: v for k, v in os.environ.items()
                                  if k != "NUMBA_THREADING_LAYER"}, "OMP_WAIT_POLICY": "ACTIVE"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ACTIVE"
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in done.stderr


def test_a_layer_the_user_chose_is_kept():
    assert _run("import tinybnn" + LAUNCH, {"NUMBA_THREADING_LAYER": "workqueue"}) == "workqueue"


def test_without_numbas_launch_function_the_workqueue_layer_is_chosen():
    code = "from numba.np.ufunc import parallel; del parallel._launch_threads\n" \
           "import tinybnn, numba; print(numba.config.THREADING_LAYER)"
    assert _run(code) == "workqueue"


def test_a_launched_pool_is_kept():
    code = "import numba; numba.config.THREADING_LAYER = 'workqueue'\n" + LAUNCH + \
           "from tinybnn.backend import prefer_sleeping_numba_threads\n" \
           "print(prefer_sleeping_numba_threads(), numba.threading_layer())"
    assert _run(code).splitlines()[-1] == "None workqueue"


WIDE = """
import llvmlite.binding as llvm, numba, numpy as np
from numba import njit
@njit
def axpy(a, x, y):
    for i in range(x.size):
        y[i] += a * x[i]
axpy(np.float32(2), np.ones(64, np.float32), np.ones(64, np.float32))
print(llvm.get_host_cpu_features().get("avx512f", False), numba.config.CPU_FEATURES)
print("zmm" in axpy.inspect_asm(axpy.signatures[0]))
"""


@pytest.mark.parametrize("first", ["import tinybnn", "import numba, tinybnn"])
def test_import_lets_numba_use_512_bit_vectors_on_avx512(first):
    (avx512, features), (zmm,) = (line.split(" ", 1) if " " in line else (line,)
                                  for line in _run(first + WIDE).splitlines())
    if avx512 == "True":
        assert features.endswith(",-prefer-256-bit") and "+avx512f" in features
        assert zmm == "True"
    else:
        assert features == "None"


def test_cpu_features_the_user_set_are_kept():
    out = _run("import os, tinybnn, numba; print(numba.config.CPU_FEATURES, "
               "os.environ['NUMBA_CPU_FEATURES'])", {"NUMBA_CPU_FEATURES": "+sse2"})
    assert out == "+sse2 +sse2"


FAULTS = """
import resource, numpy as np
from tinybnn.backend import reuse_freed_memory
{setting}
def faults_of_one_step():
    # a training step in miniature: arrays of a few sizes live together, then are all freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    alive = [np.ones(mib * 2**18, np.float32) for mib in (8, 4, 8, 2, 16, 8, 4)]
    del alive
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_one_step()                                  # the first step faults its pages in
print(min(faults_of_one_step() for _ in range(3)))    # the later ones
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_reuse_freed_memory_avoids_page_faults_in_later_steps():
    default = int(_run(FAULTS.format(setting="")))
    kept = int(_run(FAULTS.format(setting="assert reuse_freed_memory()")))
    assert default >= 1000            # 50 MiB = 12,800 pages; glibc returns most of them
    assert kept < 100                 # every page of every later step is reused
