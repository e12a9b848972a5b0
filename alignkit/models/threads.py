"""How many CPU threads torch should use: the cores actually free, not all of them.

torch's default is one intra-op thread per core. On a machine where other processes keep cores busy,
every parallel operation then waits for the thread that lost its core: on 2 shared cores with a
load of ~4.5 the quickstart ran 28x slower than idle (issue 21), far more than its share of the CPU.
`choose_threads()` counts the cores this process may run on (its CPU affinity) minus the other
processes running right now, and never goes above the count torch had when this module was imported
(torch's default in a fresh process, or what the caller had set by then, e.g. 1 in the test suite).

"Running right now" is read from the kernel's instantaneous run queue (`procs_running` in
/proc/stat, sampled a few times over ~50 ms, minus this process's own running threads), not from
the 1-minute load average, which lags by a minute and counts this process's own past work. Where
/proc is absent (macOS), the load average stands in for it.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch

_CAP = torch.get_num_threads()  # torch's count when this module was first imported; never exceeded


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; all cores where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _own_running() -> int:
    """This process's threads in the running state (R), from /proc/self/task/*/stat."""
    n = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.rfind(")") + 2:].startswith("R"):
            n += 1
    return n


def _procs_running() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running "):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def busy_elsewhere(samples: int = 5, interval: float = 0.01) -> float:
    """Runnable threads of other processes now: the median over `samples` reads of the run queue,
    less this process's own running threads; the 1-minute load average where /proc is absent."""
    reads = []
    for i in range(samples):
        total = _procs_running()
        if total is None:
            break
        reads.append(max(0, total - _own_running()))
        if i + 1 < samples:
            time.sleep(interval)
    if reads:
        return float(statistics.median(reads))
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def choose_threads() -> int:
    """The free cores (usable cores less the busy ones, at least 1), capped at torch's thread count
    when this module was imported."""
    free = usable_cores() - int(round(busy_elsewhere()))
    return max(1, min(_CAP, free))


def set_threads(n: int = 0) -> int:
    """Set torch's intra-op threads: n > 0 exactly n, 0 the free cores now (choose_threads). Returns
    the count set. Called at the start of each training run and each sampling or evaluation stage."""
    chosen = n if n > 0 else choose_threads()
    if torch.get_num_threads() != chosen:
        torch.set_num_threads(chosen)
    return chosen
