"""The thread count from the cores actually free (models/threads.py)."""
from __future__ import annotations

import subprocess
import sys
import time

import torch

from alignkit.models import threads


def test_free_cores_capped_by_torchs_count(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(threads, "_CAP", 6)
    for busy, want in ((0.0, 6), (1.0, 6), (3.0, 5), (4.4, 4), (7.0, 1), (30.0, 1)):
        monkeypatch.setattr(threads, "busy_elsewhere", lambda b=busy: b)
        assert threads.choose_threads() == want, busy


def test_set_threads_explicit_and_automatic(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "choose_threads", lambda: 2)
        assert threads.set_threads(0) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_busy_elsewhere_sees_a_spinning_process_and_not_this_one():
    """Another process spinning on a core counts; this process's own running thread does not."""
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        loaded = threads.busy_elsewhere(samples=9, interval=0.02)
    finally:
        spin.kill()
        spin.wait()
    assert loaded >= 1  # at least the spinner (other jobs may add to it)
    assert threads._own_running() >= 1  # this thread, reading /proc, is running: subtracted, not counted
