"""Settings of components/projects/face_mask_transfer.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.projects.settings.transfer_learning import Backbone, TransferSettings, check_input_size
from components.settings import Section


class ArmSettings(Section):
    name: str
    backbone: Backbone
    weights: str | None = Field(None, description="as model.weights; null: from scratch")
    epochs: int | None = Field(None, ge=1, description="phase 1 epochs; default: the main model's two phases together")
    finetune_layers: int = Field(0, ge=0)


class CompareSettings(Section):
    arms: tuple[ArmSettings, ...] = ()
    target_accuracy: float = Field(0.9, gt=0, le=1, description="epochs_to_target: first epoch at this val accuracy")


class FaceMaskTransferSettings(TransferSettings):
    compare: CompareSettings = CompareSettings()

    @model_validator(mode="after")
    def _arm_input_sizes(self):  # an arm trains after the main model: refuse it now, not an hour in
        for i, arm in enumerate(self.compare.arms):
            check_input_size(arm.backbone, self.data.image_size, at=("compare", "arms", i, "backbone"))
        return self
