"""The process settings tinybnn makes for speed: Numba's sleeping thread pool (on import) and
glibc keeping freed memory (in tinybnn's entry points). Each runs in a fresh interpreter, since
both act once per process."""

import subprocess
import sys

import pytest


def _run(code: str, env_extra=None) -> str:
    import os

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


def test_import_chooses_the_workqueue_layer():
    assert _run("import tinybnn" + LAUNCH) == "workqueue"


def test_import_after_numba_still_chooses_workqueue():
    assert _run("import numba, tinybnn" + LAUNCH) == "workqueue"


def test_a_layer_the_user_chose_is_kept():
    code = "import tinybnn, numba, os; print(os.environ['NUMBA_THREADING_LAYER'], " \
           "numba.config.THREADING_LAYER)"
    assert _run(code, {"NUMBA_THREADING_LAYER": "safe"}) == "safe safe"


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
