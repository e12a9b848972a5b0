"""Progress of a long loop: tqdm's bar on a terminal, plain lines everywhere else.

A bar redraws itself with carriage returns, which a log file or a pipe keeps as one unreadable line.
When the stream is not a terminal, `Progress` instead writes a line such as

    train: 40/100 steps (40%), 3.21 steps/s, elapsed 0:00:12, ETA 0:00:19, loss=0.6931 accuracy=0.5000

at the first update, whenever another `every_fraction` of the total is done or `every_seconds` have
passed, and at the end: no carriage return, one line at a time. `enabled=False` shows nothing at all.

Same interface as the tqdm calls it replaces: update(n), n, set_postfix_str(s), close(), a context
manager.
"""
from __future__ import annotations

import sys
import time

EVERY_SECONDS = 30.0  # a plain line at least this often (when anything moved)
EVERY_FRACTION = 0.05  # and whenever another 5% of the total is done


def clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    def __init__(self, total: int, initial: int = 0, desc: str = "", enabled: bool = True, unit: str = "it",
                 stream=None, leave: bool = True, every_seconds: float = EVERY_SECONDS,
                 every_fraction: float = EVERY_FRACTION, terminal: bool | None = None, log=None):
        self.stream = stream if stream is not None else sys.stderr
        self.log = log  # where plain lines go instead of the stream (e.g. a command's own log)
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.enabled = enabled
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.every_seconds, self.every_fraction = every_seconds, every_fraction
        self.postfix = ""
        self._start_n, self._t0 = initial, time.monotonic()
        self._last_t, self._last_n = None, None
        self._bar = None
        if enabled and self.terminal:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, initial=initial, desc=desc, leave=leave, file=self.stream, unit=unit)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, k: int = 1) -> None:
        self.n += k
        if self._bar is not None:
            self._bar.update(k)
        elif self.enabled and k:
            self._maybe_line()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s
        if self._bar is not None:
            self._bar.set_postfix_str(s, refresh=refresh)

    def line(self) -> str:
        """'DESC: N/TOTAL UNITs (P%), R UNITs/s, elapsed H:MM:SS, ETA H:MM:SS[, POSTFIX]'."""
        elapsed = time.monotonic() - self._t0
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        left = max(0, self.total - self.n)
        eta = clock(left / rate) if rate > 0 else "?"
        pct = 100.0 * self.n / self.total if self.total else 100.0
        units = self.unit + ("s" if self.unit != "it" else "")
        text = (f"{self.desc + ': ' if self.desc else ''}{self.n}/{self.total} {units} ({pct:.0f}%), "
                f"{rate:.2f} {units}/s, elapsed {clock(elapsed)}, ETA {eta}")
        return text + (f", {self.postfix}" if self.postfix else "")

    def _maybe_line(self) -> None:
        now = time.monotonic()
        step = max(1, int(self.total * self.every_fraction))
        due = (self._last_t is None or self.n >= self.total or now - self._last_t >= self.every_seconds
               or self.n // step > self._last_n // step)
        if due and self.n != self._last_n:
            self._write(self.line())
            self._last_t, self._last_n = now, self.n

    def _write(self, line: str) -> None:
        if self.log is not None:
            self.log(line)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self._last_n is not None and self._last_n != self.n:
            self._write(self.line())  # where it stopped (an interrupted run)
            self._last_n = self.n
