"""Batch chunks on the calling thread and a pool of threads, and per-thread workspaces: how the
convolution uses every CPU core.

A convolution splits its batch into chunks of a few images. Each chunk is an independent task:
unfold its patches (an array copy) and multiply them by the weights (a BLAS call). NumPy releases
the GIL inside both, so Python threads working on different chunks run truly in parallel — the
copies too, which a multi-threaded BLAS alone would leave on one core. Small chunks also keep their
working set (about a megabyte) in the core's cache between the copy and the multiply.

While the tasks run, BLAS is limited to one thread per call (with ``threadpoolctl``): two levels of
threads on the same cores only get in each other's way. Without ``threadpoolctl`` (or with
``NUM_THREADS = 1``) the chunks simply run one after the other with BLAS's own threads.

Python threads share one interpreter lock (the GIL): only the array operations themselves run in
parallel, the Python code between them does not. So a chunk should be a handful of large array
operations on arrays allocated once. Each thread keeps a workspace per problem shape
(:func:`per_thread`) whose arrays, and the views of them a chunk needs, are made only once;
allocating fresh megabyte arrays in every chunk would also make the threads queue for the memory
allocator and for the page faults of new memory.

On a GPU (CuPy arrays) there is a single chunk: the device parallelises on its own.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable

# Threads for chunked kernels; None means one per CPU this process may run on.
NUM_THREADS: int | None = None
# Workspaces a thread may keep (one per convolution shape in use); see per_thread().
MAX_PER_THREAD = 32

_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)       # (size, process id): a forked child needs its own pool
_blas_limiter = None
_local = threading.local()


def num_threads() -> int:
    """The number of worker threads chunked kernels use on the CPU."""
    if NUM_THREADS is not None:
        return max(1, int(NUM_THREADS))
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _get_pool(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (size, os.getpid())
    if _pool is None or _pool_key != key:
        if _pool is not None and _pool_key[1] == key[1]:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="tinybnn")
        _pool_key = key
    return _pool


def _single_threaded_blas():
    """A context that limits BLAS to one thread, or None when threadpoolctl is missing."""
    global _blas_limiter
    if _blas_limiter is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas_limiter = False
        else:
            controller = ThreadpoolController()
            _blas_limiter = lambda: controller.limit(limits=1, user_api="blas")  # noqa: E731
    return _blas_limiter() if _blas_limiter else None


def chunk_bounds(n: int, step: int) -> list[tuple[int, int]]:
    """[(0, step), (step, 2·step), ..., (·, n)]: consecutive chunks of range(n)."""
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def map_chunks(work: Callable[[int, int], object], n: int, step: int, on_cpu: bool = True) -> list:
    """``[work(start, stop) for each chunk of range(n)]``, the chunks spread over threads.

    Each thread takes the next chunk not yet taken until none is left, so a thread slowed down by
    another process simply does fewer chunks. The calling thread is one of them (it would only
    wait otherwise, and it starts at once while a pool thread still wakes up). ``work`` must only
    write to its own chunk of any shared output array.
    """
    bounds = chunk_bounds(n, step)
    threads = min(num_threads(), len(bounds)) if on_cpu else 1
    limiter = _single_threaded_blas() if threads > 1 else None
    if limiter is None:
        return [work(start, stop) for start, stop in bounds]

    results = [None] * len(bounds)
    taken = iter(range(len(bounds)))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                index = next(taken, None)
            if index is None:
                return
            results[index] = work(*bounds[index])

    with limiter:
        pool = _get_pool(num_threads() - 1)
        futures = [pool.submit(worker) for _ in range(threads - 1)]
        try:
            worker()
        finally:
            wait(futures)                   # all of them, even when one failed
    for future in futures:
        future.result()                     # raises the error of a failed chunk, if any
    return results


def per_thread(key, make: Callable[[], object]):
    """The calling thread's object for ``key``, made by ``make()`` the first time it is asked for.

    Kernels keep their work arrays here (a workspace per thread and problem shape), so the
    chunks of a batch allocate nothing. A thread keeps at most :data:`MAX_PER_THREAD` objects; past
    that they are all dropped and made again when needed.
    """
    cache = _local.__dict__.setdefault("cache", {})
    value = cache.get(key)
    if value is None:
        if len(cache) >= MAX_PER_THREAD:
            cache.clear()
        value = cache[key] = make()
    return value
