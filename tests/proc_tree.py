"""Child processes, read from /proc (tests only): the signal, interrupt and watchdog tests
check that what a command started is gone when it ends."""

from __future__ import annotations

from pathlib import Path


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (empty where there is no /proc)."""
    out = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:                      # gone meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def runs(pid: int, marker: bytes) -> bool:
    """Whether process ``pid`` exists and its command line holds ``marker``."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
