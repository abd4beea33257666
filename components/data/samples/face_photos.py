"""Six REAL face photos of two people, from the ``face-recognition==1.3.0`` sdist's ``tests/test_images`` (MIT,
copyright 2017 Adam Geitgey; the photos are official White House portraits and photographs): five of Barack
Obama (a portrait, a speech, a group photo, two half faces) and one of Joe Biden. Enough for a same / different
check of a face encoder on photographs, not a dataset. ``32bit.png`` is left out: it is ``obama2.jpg`` again, as
an RGBA PNG.

``make setup`` downloads the sdist with pip (a package registry; nothing is fetched at run time) and calls
``python -m components.data.samples.face_photos SDIST OUT_DIR``, which writes the layout of identity folders
that facenet-verification reads, ``OUT_DIR/<person>/<file>.jpg``, with the package's LICENSE beside them.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

ROOT = "face_recognition-1.3.0"
PHOTOS = {  # file in tests/test_images -> the person in it
    "obama.jpg": "obama",
    "obama2.jpg": "obama",
    "obama3.jpg": "obama",
    "obama_partial_face.jpg": "obama",
    "obama_partial_face2.jpg": "obama",
    "biden.jpg": "biden",
}


def extract(sdist: Path, out_dir: Path) -> dict[str, int]:
    """Write the six photos into ``out_dir/<person>/`` and the licence into ``out_dir/LICENSE``; photos per
    person."""
    out_dir = Path(out_dir)
    with tarfile.open(sdist, "r:gz") as tar:
        for name, person in PHOTOS.items():
            member = tar.extractfile(f"{ROOT}/tests/test_images/{name}")
            (out_dir / person).mkdir(parents=True, exist_ok=True)
            (out_dir / person / name).write_bytes(member.read())
        licence = tar.extractfile(f"{ROOT}/LICENSE").read().decode()
    (out_dir / "LICENSE").write_text(
        f"The photos below this folder come from the face-recognition 1.3.0 sdist ({ROOT}/tests/test_images),\n"
        f"distributed under its licence:\n\n{licence}"
    )
    return {p: sum(v == p for v in PHOTOS.values()) for p in sorted(set(PHOTOS.values()))}


if __name__ == "__main__":
    print(extract(Path(sys.argv[1]), Path(sys.argv[2])))
