"""One leaderboard cell (a set-up, a training run, or one model scored on one task for one seed), run
in its own process, timed and measured.

`run_cell(fn, kwargs)` forks a child that sets its torch threads, calls `fn(**kwargs)` and sends back
the result with its wall time and peak memory: the peak resident set of its own process
(getrusage ru_maxrss: it includes the pages the runner had when it forked) and, when CUDA was used,
the peak allocated GPU memory. Any failure, a user error, a bug, a crash or a timeout, becomes a
one-line error of that cell; the runner goes on with the others. With isolate=False the cell runs in
the calling process (tests; the peak is then the process's so far).
"""
from __future__ import annotations

import multiprocessing
import resource
import sys
import time
import traceback

from ..errors import AlignkitError


def one_line(e: BaseException) -> str:
    """A one-line message: a user error as it is, anything else with its type."""
    msg = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
    if isinstance(e, AlignkitError):
        return msg or type(e).__name__
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _peak() -> dict:
    out = {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def _call(fn, kwargs: dict, threads: int) -> dict:
    t0 = time.time()
    try:
        if threads:
            import torch
            torch.set_num_threads(threads)
        value = fn(**kwargs)
        res = {"status": "ok", "value": value}
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - a cell's failure must not stop the other cells
        res = {"status": "error", "error": one_line(e), "traceback": traceback.format_exc(limit=8)}
    res["seconds"] = round(time.time() - t0, 2)
    res.update(_peak())
    return res


def _child(fn, kwargs, threads, conn):
    try:
        conn.send(_call(fn, kwargs, threads))
    finally:
        conn.close()


def prewarm(model_paths) -> None:
    """Import in the runner what every cell would otherwise import again after the fork (torch,
    transformers, the trainers, the models' architecture code: seconds per cell on a busy machine)."""
    import json
    from pathlib import Path
    import torch  # noqa: F401
    import transformers

    from .. import registry  # noqa: F401  (the method registry and, below, the trainers it runs lazily: every
    from ..online import iterative  # noqa: F401  cell then runs the code as it was when the leaderboard started)
    from ..rewards import train as reward_train  # noqa: F401
    from ..rl import trainer  # noqa: F401
    from ..train import offline  # noqa: F401
    for path in model_paths:
        cfg = Path(path) / "config.json"
        try:
            archs = json.loads(cfg.read_text()).get("architectures") or [] if cfg.is_file() else []
        except (OSError, ValueError, AttributeError):
            continue
        for arch in archs:
            getattr(transformers, str(arch), None)


def run_cell(fn, kwargs: dict, isolate: bool = True, threads: int = 1, timeout: float = 0.0) -> dict:
    """{"status": "ok"|"error", "value" | "error", "seconds", "peak_rss_mib"[, "peak_gpu_mib"]}."""
    if not isolate:
        return _call(fn, kwargs, threads)
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    t0 = time.time()
    proc = ctx.Process(target=_child, args=(fn, kwargs, threads, send), daemon=True)
    proc.start()
    send.close()
    res, timed_out = None, False
    try:
        if recv.poll(timeout or None):
            res = recv.recv()
        else:
            timed_out = True
    except EOFError:  # the child died before it sent anything
        res = None
    except KeyboardInterrupt:
        proc.terminate()
        proc.join(5)
        raise
    finally:
        recv.close()
    if timed_out:
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
        res = {"status": "error", "error": f"timed out after {timeout:g} s (--timeout)"}
    proc.join()
    if res is None:
        code = proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        res = {"status": "error", "error": f"the cell's process died ({how}) before it reported"}
    res.setdefault("seconds", round(time.time() - t0, 2))
    return res
