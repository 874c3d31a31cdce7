"""What processes on this machine cost, read from /proc (Linux): CPU time, memory, load; and
what a service process wrote to its log."""

import json
import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far (/proc/<pid>/stat)."""
    # The command name (field 2) may hold spaces and parentheses: split after its ')'.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory now (VmHWM: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} for process {pid}")


def postgres_backends_cpu_s(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to `database`, by pid.

    A backend's command line reads `postgres: <role> <database> <client> <state>`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
            if len(words) > 2 and words[0] == b"postgres:" and words[2] == database.encode():
                found[int(entry.name)] = cpu_s(int(entry.name))
        except (OSError, ValueError):  # gone meanwhile
            continue
    return found


def machine_ticks() -> tuple[int, int]:
    """Busy and total CPU ticks of the whole machine so far, all cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


class LoggedProcess:
    """A service process that logs to `log_path` (JSON lines, as in a pod)."""

    log_path: Path

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def log_lines(self) -> list[dict[str, object]]:
        """Every line, parsed; one that is not JSON (a crash's traceback) as a "raw" event."""
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"event": raw, "level": "raw"})
        return lines
