"""Write a project's offline sample without ever overwriting a user's data.

A sample is generated into a scratch directory first, then compared, file by file (SHA-256), with what the
project's data directory holds:

    missing or empty                    -> the sample moves in                       ("wrote")
    exactly this sample already         -> nothing is touched (DVC's hashes stay)    ("unchanged")
    exactly a sample written before     -> replaced by today's sample                ("replaced")
    anything else (a user's data)       -> left as it is, the differing paths named  ("kept")

"A sample written before" is what the manifest recorded when ``write_sample`` last wrote one: its file
hashes, in ``<manifests>/<project>.json``. The manifests live OUTSIDE the data directory (``.dlfolio/samples/``
beside ``data/``, git-ignored), because a file inside ``data/`` would change the hash that ``data.dvc``
records. A directory that holds exactly the sample without a manifest (a `dvc pull`ed or checked-out data/)
is recognised by the comparison itself. ``force=True`` overwrites whatever is there and returns the paths
it replaced or deleted.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SampleWrite:
    action: str  # wrote | unchanged | replaced | kept | overwrote
    counts: Any = None  # what the generator returned
    paths: list[str] = field(default_factory=list)  # kept: paths that differ; overwrote: paths replaced or deleted


def file_hashes(directory: Path) -> dict[str, str]:
    """Relative path (POSIX) -> SHA-256 of every file under ``directory``."""
    directory = Path(directory)
    out = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out[path.relative_to(directory).as_posix()] = digest.hexdigest()
    return out


def differing(existing: dict[str, str], sample: dict[str, str]) -> list[str]:
    """The existing files the sample would replace or delete (changed or not in the sample), then the files
    the sample has that are missing."""
    changed = [p for p, h in existing.items() if sample.get(p) != h]
    return changed + [p for p in sample if p not in existing]


def write_sample(
    make: Callable[[Path], Any], out_dir: Path, manifests: Path, project: str, force: bool = False
) -> SampleWrite:
    """Generate with ``make(directory)`` and put the result at ``out_dir`` only where that loses nothing."""
    out_dir, manifests = Path(out_dir), Path(manifests)
    manifest = manifests / f"{project}.json"
    manifests.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{project}-", dir=manifests))  # beside the manifests: same disk
    try:
        counts = make(scratch / "sample")
        sample = file_hashes(scratch / "sample")
        if out_dir.exists() and not out_dir.is_dir():
            existing = {out_dir.name: "not a directory"}
        else:
            existing = file_hashes(out_dir) if out_dir.is_dir() else {}
        if existing == sample:
            _record(manifest, sample)
            return SampleWrite("unchanged", counts)
        if not existing:
            action = "wrote"
        elif existing == _recorded(manifest):
            action = "replaced"
        elif force:
            action = "overwrote"
        else:
            return SampleWrite("kept", counts, differing(existing, sample))
        _swap_in(scratch / "sample", out_dir, scratch)
        _record(manifest, sample)
        return SampleWrite(action, counts, differing(existing, sample) if action == "overwrote" else [])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _swap_in(new: Path, out_dir: Path, scratch: Path) -> None:
    """The old directory aside (into scratch, deleted with it), the new one in."""
    if out_dir.exists() or out_dir.is_symlink():
        aside = scratch / f"old-{secrets.token_hex(4)}"
        shutil.move(str(out_dir), str(aside))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(new), str(out_dir))


def _recorded(manifest: Path) -> dict[str, str] | None:
    try:
        return json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record(manifest: Path, files: dict[str, str]) -> None:
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")
    tmp.replace(manifest)
