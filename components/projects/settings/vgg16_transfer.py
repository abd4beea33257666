"""Settings of components/projects/vgg16_transfer.py and the capabilities its code declares, torch-free, so
that `dlfolio check` validates params.yaml without importing the project's code."""

from __future__ import annotations

from pydantic import Field

from components.projects.settings.image_classification import ImageDataSettings
from components.projects.settings.transfer_learning import TransferSettings


class CsvImageDataSettings(ImageDataSettings):
    csv: str = Field("driver_imgs_list.csv", description="metadata file in data_dir: subject,classname,img")
    images_dir: str = Field("imgs/train", description="folder in data_dir holding <classname>/<img>")
    min_subjects: int = Field(3, ge=3, description="subjects needed: the split puts each in one part")


class Vgg16Settings(TransferSettings):
    data: CsvImageDataSettings
