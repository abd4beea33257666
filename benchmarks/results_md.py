"""What the benchmark scripts share: writing their section of benchmarks/RESULTS.md, and the host's load."""

from __future__ import annotations

import os
from pathlib import Path


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts at the line ``heading`` (up to the next '## ' heading) with ``text``, or
    append ``text``; the other sections stay as they are."""
    body = path.read_text() if path.exists() else "# Benchmark results\n"
    start = body.find(heading + "\n")
    if start < 0:
        body = body.rstrip("\n") + "\n\n" + text
    else:
        end = body.find("\n## ", start + len(heading))
        body = body[:start] + text.rstrip("\n") + "\n" + ("\n" + body[end + 1 :] if end >= 0 else "")
    path.write_text(body.rstrip("\n") + "\n")


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none): a timing taken on a busy host says so."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
