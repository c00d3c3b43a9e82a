"""Forward passes and, optionally, wall time per decoding phase."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Dict

import torch


class PhaseClock:
    """Counts the forwards of each phase; with ``time_phases`` also sums their wall seconds.

    Timing a phase synchronises CUDA at its end (so that asynchronous kernels are charged to the
    phase that launched them), one more host sync per forward: hence optional.  ``now()`` (event
    times, the total) needs no synchronisation.
    """

    def __init__(self, device: torch.device, time_phases: bool):
        self.start = time.perf_counter()
        self.time_phases = time_phases
        self.sync = time_phases and device.type == "cuda"
        self.seconds: Dict[str, float] = {}
        self.forwards: Dict[str, int] = {}

    def now(self) -> float:
        """Seconds since the clock started."""
        return time.perf_counter() - self.start

    @contextmanager
    def phase(self, name: str):
        """One forward of phase ``name`` (nested phases count in both)."""
        t0 = time.perf_counter() if self.time_phases else 0.0
        yield
        if self.time_phases:
            if self.sync:
                torch.cuda.synchronize()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        self.forwards[name] = self.forwards.get(name, 0) + 1

    def timings(self) -> Dict[str, float]:
        """Seconds per timed phase, and ``total``."""
        return dict(self.seconds, total=self.now())
