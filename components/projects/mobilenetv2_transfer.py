"""mobilenetv2-transfer: MobileNetV2 base, frozen; a new head; then its top layers fine-tuned [seed 003].

Real format: an image folder, ``<data_dir>/<class>/<image>``. Offline sample: four Fashion-MNIST classes as
RGB PNG files. No ImageNet weights for MobileNetV2 install offline, so the default params train it from scratch
(``weights: null``: nothing is frozen in phase 1, and BatchNorm statistics are recomputed around each phase, see
``transfer_training.recompute_batchnorm``); give a torchvision weights file as ``model.weights`` and the same
params freeze the pretrained base, train the head, then fine-tune the top layers.
"""

from __future__ import annotations

from pathlib import Path

from components.data.samples.fashion import write_image_folder
from components.projects.transfer_learning import TransferProject


class MobileNetV2Transfer(TransferProject):
    name = "mobilenetv2-transfer"
    summary = "MobileNetV2 transfer learning: frozen base, new head, fine-tuned top layers, augmentation (image folder)"

    def make_sample(self, out_dir: Path) -> dict:
        return write_image_folder(out_dir)
