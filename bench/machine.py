"""What the machine was doing during a benchmark phase: load average and the share of CPU time the hypervisor
took for other guests (``steal`` in /proc/stat). On a shared VM a high steal share means the numbers measure
the host's contention, not the code."""

from __future__ import annotations

import os


def _cpu_times() -> list[int]:
    with open("/proc/stat") as fh:
        return [int(v) for v in fh.readline().split()[1:]]


class Phase:
    """``with Phase() as p: ...``, then ``p.describe()``: load average at the end, steal over the phase."""

    def __enter__(self) -> Phase:
        self.start = _cpu_times() if os.path.exists("/proc/stat") else None
        return self

    def __exit__(self, *exc) -> None:
        self.end = _cpu_times() if self.start is not None else None

    @property
    def steal(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        delta = [b - a for a, b in zip(self.start, self.end, strict=False)]
        total = sum(delta[:8])  # user nice system idle iowait irq softirq steal
        return delta[7] / total if total and len(delta) > 7 else None

    def describe(self) -> str:
        steal = self.steal
        stolen = f", CPU stolen by the hypervisor {steal:.0%}" if steal is not None else ""
        return f"load average {os.getloadavg()[0]:.2f}{stolen}"
