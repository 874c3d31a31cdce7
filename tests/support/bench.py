"""What every benchmark does with its figures."""

import json
import time

from support.servers import REPO


def record(name: str, figures: dict[str, object]) -> None:
    """Keep a run's figures as JSON under .local/bench/, so later runs can be compared."""
    folder = REPO / ".local" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (folder / f"{name}-{stamp}.json").write_text(json.dumps(figures, indent=2))
