"""Settings of components/projects/face_mask_transfer.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.models.catalog import input_size_problem
from components.projects.settings.face_mask import FaceMaskDataSettings
from components.projects.settings.image_classification import ModelSettings
from components.projects.settings.transfer_learning import Backbone, TransferSettings, check_input_size
from components.settings import Section, SettingsProblem


class ArmSettings(Section):
    """One model of the comparison: a transfer ``backbone`` (pretrained from ``weights``, or from scratch), or a
    ``network`` of the catalog (e.g. the dense ANN ``mlp`` or the custom CNN ``mask_cnn``) trained from scratch."""

    name: str
    backbone: Backbone | None = None
    network: ModelSettings | None = None
    weights: str | None = Field(None, description="as model.weights; null: from scratch")
    epochs: int | None = Field(None, ge=1, description="phase 1 epochs; default: the main model's two phases together")
    finetune_layers: int = Field(0, ge=0)
    image_size: int | None = Field(
        None, ge=8, description="the arm's input size (the images are resized to it); default data.image_size"
    )

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.backbone is None) == (self.network is None):
            raise ValueError("an arm names exactly one of backbone (transfer) or network (a catalog model)")
        if self.network is not None and (self.weights is not None or self.finetune_layers):
            raise ValueError("a network arm trains from scratch: weights and finetune_layers belong to backbone arms")
        return self


class CompareSettings(Section):
    arms: tuple[ArmSettings, ...] = ()
    target_accuracy: float = Field(0.9, gt=0, le=1, description="epochs_to_target: first epoch at this val accuracy")


class FaceMaskTransferSettings(TransferSettings):
    data: FaceMaskDataSettings  # the face-mask sample's options too (its data is that sample)
    compare: CompareSettings = CompareSettings()

    @model_validator(mode="after")
    def _arm_input_sizes(self):  # an arm trains after the main model: refuse it now, not an hour in
        for i, arm in enumerate(self.compare.arms):
            size = arm.image_size or self.data.image_size
            if arm.backbone is not None:
                check_input_size(arm.backbone, size, at=("compare", "arms", i, "backbone"))
            elif (problem := input_size_problem(arm.network.name, arm.network.kwargs, size, 3)) is not None:
                key, why = problem
                at = ("network", "kwargs", key) if key else ("image_size",)
                raise SettingsProblem(why, at=("compare", "arms", i, *at))
        return self
