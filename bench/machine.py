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


def speed_probe(iterations: int = 3_000_000) -> float:
    """Milliseconds of CPU a fixed pure-Python loop takes now: the host's speed at this moment. On a shared VM
    the same code's CPU time varies by a quarter or more between minutes (other guests share the physical
    cores, which steal accounting does not always show); a run's numbers are comparable with another's
    only next to their probes."""
    import time

    started = time.process_time()
    total = 0
    for i in range(iterations):
        total += i
    return 1000 * (time.process_time() - started)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu() -> dict[int, tuple[str, float]]:
    """Every process's (role, CPU seconds so far): user + system time from /proc/<pid>/stat."""
    roles: dict[int, tuple[str, float]] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
        if pid == me:
            role = "load generator"
        elif "celery" in cmdline and " worker" in cmdline:
            role = "celery worker"
        elif "uvicorn" in cmdline or "multiprocessing.spawn" in cmdline:
            role = "app server"
        elif cmdline.startswith("postgres") or "/postgres" in cmdline.split(" ")[0]:
            role = "postgresql"
        elif "redis-server" in cmdline:
            role = "redis"
        elif "twilio_sandbox" in cmdline:
            role = "sandbox"
        else:
            continue
        roles[pid] = (role, cpu)
    return roles


class ProcessCPU:
    """``with ProcessCPU() as cpu: ...``, then ``cpu.per(requests)``: the CPU time each role (app server,
    PostgreSQL, Redis, Celery worker, load generator) used over the phase, per request, in microseconds.
    Processes that started during the phase count in full."""

    def __enter__(self) -> ProcessCPU:
        self.start = _process_cpu() if os.path.isdir("/proc") else {}
        return self

    def __exit__(self, *exc) -> None:
        self.end = _process_cpu() if self.start or os.path.isdir("/proc") else {}

    def used(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for pid, (role, cpu) in self.end.items():
            before = self.start.get(pid)
            spent = cpu - (before[1] if before and before[0] == role else 0.0)
            totals[role] = totals.get(role, 0.0) + max(spent, 0.0)
        return totals

    def per(self, requests: int) -> str:
        if not requests or not self.end:
            return "n/a"
        used = self.used()
        order = ("app server", "postgresql", "redis", "celery worker", "sandbox", "load generator")
        parts = [f"{role} {1e6 * used[role] / requests:.0f}" for role in order if role in used]
        return "CPU µs per request: " + ", ".join(parts)
