"""Shared by the benchmarks: the best of several timed runs after one warm-up (run them as scripts,
``python benchmarks/bench_x.py``, so that this folder is on the import path)."""

import time


def best_of(fn, repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
