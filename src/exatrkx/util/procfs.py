"""Processes of a process group, read from ``/proc`` (a server and its backend stubs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessInfo:
    """One live process of a group.

    Attributes:
        pid: process id.
        program: file name of its program (first word of its command line).
        args: its command line.
        state: the one-letter state of ``/proc/<pid>/stat`` (``Z``: zombie).
        cpu_s: user + system CPU seconds so far.
        rss_bytes: resident memory.
    """

    pid: int
    program: str
    args: tuple[str, ...]
    state: str
    cpu_s: float
    rss_bytes: int


_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _read(pid: str) -> ProcessInfo | None:
    base = Path("/proc") / pid
    try:
        stat = (base / "stat").read_text()
        args = (base / "cmdline").read_bytes().decode(errors="replace").split("\0")
        rss_pages = int((base / "statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    args = [a for a in args if a]
    return ProcessInfo(pid=int(pid), program=Path(args[0]).name if args else "",
                       args=tuple(args), state=fields[0],
                       cpu_s=(int(fields[11]) + int(fields[12])) / _TICK,
                       rss_bytes=rss_pages * _PAGE)


def _pgid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[2])  # field 5: process group
    except (OSError, ValueError, IndexError):
        return None


def group_processes(pgid: int) -> Iterator[ProcessInfo]:
    """The processes of process group ``pgid`` (zombies included: check ``state``)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux
        return
    for entry in entries:
        if entry.isdigit() and _pgid(entry) == pgid:
            info = _read(entry)
            if info is not None:
                yield info


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the processes of a process group."""
    return sum(p.cpu_s for p in group_processes(pgid))


def group_rss(pgid: int) -> dict[str, int]:
    """Resident memory (bytes) of a process group by program name, plus ``processes``
    (their count); empty when the group is gone."""
    out: dict[str, int] = {}
    count = 0
    for proc in group_processes(pgid):
        if proc.state in ("Z", "X"):
            continue
        out[proc.program] = out.get(proc.program, 0) + proc.rss_bytes
        count += 1
    if count:
        out["processes"] = count
    return out
