"""Open-loop HTTP load with vegeta (github.com/tsenart/vegeta), in a process of its own.

Open loop: requests leave at a constant rate whether or not earlier ones were answered, and
each latency counts from the moment its request was due, so a slow server shows as slow
answers rather than as fewer requests (no coordinated omission, as a closed loop of N
clients has). vegeta is a Go program: it costs the 2-core machine far less CPU than a
Python client sending the same rate. It is built once from the Go module proxy, at a pinned
version, into .local/tools (Go is on the project's machines; nothing is installed by hand).
"""

import base64
import json
import os
import resource
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from support.servers import REPO

VERSION = "v12.13.0"
TOOLS = REPO / ".local" / "tools" / f"vegeta-{VERSION}"


def vegeta() -> Path:
    """The vegeta binary; the first call builds it (about half a minute)."""
    binary = TOOLS / "vegeta"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the HTTP benchmark builds vegeta with Go, and `go` is not on PATH")
    TOOLS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [go, "install", f"github.com/tsenart/vegeta/v12@{VERSION}"],
        env={**os.environ, "GOBIN": str(TOOLS)}, check=True, capture_output=True,
    )  # fmt: skip
    return binary


@dataclass(frozen=True)
class Target:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def write_targets(path: Path, targets: Iterable[Target]) -> int:
    """Targets in vegeta's JSON format (one a line); it sends them in order, then again."""
    count = 0
    with path.open("w") as out:
        for t in targets:
            line = {
                "method": t.method,
                "url": t.url,
                "header": {name: [value] for name, value in t.headers.items()},
                "body": base64.b64encode(t.body).decode(),
            }
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            count += 1
    return count


@dataclass(frozen=True)
class Attack:
    """One run at a constant rate, as vegeta reports it (latencies in milliseconds)."""

    rate: int
    seconds: float
    sent: int
    achieved_rate: float  # below `rate` when vegeta itself could not keep up
    status_codes: dict[str, int]  # "0" means no answer (timeout, connection refused)
    errors: list[str]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_s: float  # vegeta's own CPU time, to show it was not the bottleneck

    def answered(self, status: int) -> int:
        return self.status_codes.get(str(status), 0)


def attack(targets: Path, rate: int, seconds: float, results: Path) -> Attack:
    """Send `rate` requests a second for `seconds` from the targets file, and report."""
    binary = str(vegeta())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [
            binary, "attack", "-format=json", f"-targets={targets}",
            f"-rate={rate}/s", f"-duration={seconds}s", "-timeout=30s",
            # Enough workers and connections up front that none is spawned mid-run, and no
            # response body is kept (the status code is all the report needs).
            "-workers=256", "-max-body=0", f"-output={results}",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = subprocess.run(
        [binary, "report", "-type=json", str(results)], check=True, capture_output=True
    )
    figures = json.loads(report.stdout)
    latency = figures["latencies"]

    def ms(key: str) -> float:
        return float(latency[key]) / 1e6

    return Attack(
        rate=rate,
        seconds=seconds,
        sent=int(figures["requests"]),
        achieved_rate=float(figures["rate"]),
        status_codes={str(k): int(v) for k, v in (figures["status_codes"] or {}).items()},
        errors=list(figures["errors"] or [])[:5],
        p50_ms=ms("50th"),
        p90_ms=ms("90th"),
        p99_ms=ms("99th"),
        max_ms=ms("max"),
        client_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )
