"""The offline facenet-verification sample: GENERATED people, not photographs, one folder of images each.

No face-identity dataset installs offline, so each "person" is a set of face proportions drawn by the
facial-keypoints face generator (``facial_keypoints.draw_face``): eye spacing, height and width, brow height
and length, nose tip, mouth width and height, head outline, skin tone, feature shades, eye opening and brow
thickness, all fixed by the person's seed, with each proportion's range ``spread`` (2.5) times as wide as the keypoint
sample's (bolder faces: at 64 px the keypoint sample's people differ by about a pixel). What changes from one
image of a person to the next is what changes between roughly aligned photographs: size (head half-width 29-36
px at 96), rotation (+-9 degrees) and position (+-4.5 px) (``pose`` 0.5: half the keypoint sample's ranges), the
background (a crop of one of scikit-image's bundled real photos), the direction and strength of the light,
contrast, brightness and noise. So a raw-pixel distance sees mostly pose, light and background (its ROC-AUC on
the test pairs is about 0.6), and telling people apart takes the proportions.

Written as ``<out_dir>/person_NNN/img_NN.png`` (8-bit grey, ``size`` x ``size``): the real format, one folder per
identity. Same seed, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from components.data.samples.facial_keypoints import _backgrounds, draw_face


def generate(
    out_dir: str | Path,
    identities: int = 100,
    images: int = 8,
    size: int = 64,
    spread: float = 2.5,
    pose: float = 0.5,
    seed: int = 0,
) -> dict[str, int]:
    out_dir = Path(out_dir)
    backgrounds = _backgrounds()
    people, shots = np.random.SeedSequence([seed, 1]).spawn(2)
    person_seeds = people.generate_state(identities)
    rng = np.random.default_rng(shots)  # poses, backgrounds and lighting, one image after the other
    for i, person_seed in enumerate(person_seeds):
        folder = out_dir / f"person_{i:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(images):
            face, _ = draw_face(
                rng, backgrounds, person=np.random.default_rng(int(person_seed)), spread=spread, pose=pose
            )
            image = Image.fromarray(face, "L")
            if size != face.shape[0]:
                image = image.resize((size, size), Image.BOX)
            image.save(folder / f"img_{j:02d}.png", optimize=False)
    return {"identities": identities, "images": identities * images}
