"""Image classification with torchvision models: reading scans, the model and its adapter.

Images arrive as a zip with one folder per class. Every image is read with Pillow, turned
upright by its EXIF orientation and converted to RGB (grayscale, palette and alpha images
included); files that cannot be read are listed, not fatal. Models are ResNet-18,
MobileNet V3 (small) and EfficientNet-B0 from torchvision, with their ImageNet weights
when the weight file is already in the local torch cache, else from random weights.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from edutune_core.i18n import DataError
from edutune_core.tasks import PreparedData

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_IMAGES = 20000
MAX_UNZIPPED_BYTES = 2 * 2**30
IMAGE_SIZE = 224
# torchvision builder, weights enum name, and the attribute path of the classifier layer.
ARCHITECTURES = {
    "resnet18": ("resnet18", "ResNet18_Weights", "fc"),
    "mobilenet_v3_small": ("mobilenet_v3_small", "MobileNet_V3_Small_Weights", "classifier.3"),
    "efficientnet_b0": ("efficientnet_b0", "EfficientNet_B0_Weights", "classifier.1"),
}


def read_image(path: str | Path) -> Image.Image:
    """Open an image upright and in RGB."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        if upright.mode in ("RGBA", "LA", "P"):
            upright = upright.convert("RGBA")
            background = Image.new("RGBA", upright.size, "white")
            upright = Image.alpha_composite(background, upright)
        return upright.convert("RGB")


def unpack_class_folders(data: bytes, file_name: str, folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """Extract a zip of class folders into ``folder``; return (image, label) rows and unreadable files.

    Raises:
        DataError: The file is not a zip, escapes the folder, is too large, or has fewer
            than two classes.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError("images.not_zip", file=file_name) from None
    members = [member for member in archive.infolist() if not member.is_dir()]
    _check_members(members, file_name)
    rows, unreadable = [], []
    for member in members:
        parts = PurePosixPath(member.filename).parts
        if len(parts) < 2 or PurePosixPath(member.filename).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        target = folder / Path(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(member))
        try:
            read_image(target)
        except (UnidentifiedImageError, OSError):
            unreadable.append(member.filename)
            continue
        rows.append({"image": str(target), "label": parts[-2]})
    frame = pd.DataFrame(rows, columns=["image", "label"])
    if frame["label"].nunique() < 2:
        raise DataError("images.too_few_classes", file=file_name, classes=frame["label"].nunique())
    return frame, unreadable


def _check_members(members: list[zipfile.ZipInfo], file_name: str) -> None:
    if len(members) > MAX_IMAGES:
        raise DataError("images.too_many", file=file_name, count=len(members), maximum=MAX_IMAGES)
    if sum(member.file_size for member in members) > MAX_UNZIPPED_BYTES:
        raise DataError("images.too_large", file=file_name, limit=MAX_UNZIPPED_BYTES // 2**30)
    for member in members:
        path = PurePosixPath(member.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
            raise DataError("images.unsafe_path", file=file_name, path=member.filename)


def cached_weights(architecture: str):
    """Return the torchvision weights enum when its file is in the torch cache, else None."""
    import torchvision.models as models

    weights = getattr(models, ARCHITECTURES[architecture][1]).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    return weights if cached.is_file() else None


def build_image_model(architecture: str, outputs: int, pretrained: bool = True) -> tuple[torch.nn.Module, bool]:
    """Build a torchvision classifier with a new head; return it and whether it is pretrained."""
    import torchvision.models as models

    builder, _, head_path = ARCHITECTURES[architecture]
    weights = cached_weights(architecture) if pretrained else None
    model = getattr(models, builder)(weights=weights)
    parent = model
    *parents, last = head_path.split(".")
    for name in parents:
        parent = getattr(parent, name) if not name.isdigit() else parent[int(name)]
    old = parent[int(last)] if last.isdigit() else getattr(parent, last)
    new = torch.nn.Linear(old.in_features, outputs)
    if last.isdigit():
        parent[int(last)] = new
    else:
        setattr(parent, last, new)
    logger.info("built %s with %s", architecture, "ImageNet weights" if weights else "random weights")
    return model, weights is not None


class ImageAdapter:
    """The adapter interface of ``edutune_core.adapters`` for torchvision classifiers."""

    kind = "image"

    def __init__(self, architecture: str, model: torch.nn.Module, outputs: int, pretrained: bool,
                 augment: bool = True) -> None:
        from torchvision import transforms

        self.architecture, self.model, self.outputs, self.pretrained = architecture, model, outputs, pretrained
        normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        self.eval_transform = transforms.Compose([transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
                                                  transforms.ToTensor(), normalize])
        # Scans are upright and framed: small rotations, crops and contrast changes only.
        self.train_transform = transforms.Compose([
            transforms.RandomRotation(5, fill=255), transforms.RandomResizedCrop(IMAGE_SIZE, scale=(0.85, 1.0)),
            transforms.ColorJitter(contrast=0.2, brightness=0.1), transforms.ToTensor(), normalize,
        ]) if augment else self.eval_transform

    @classmethod
    def create(cls, architecture: str, outputs: int) -> ImageAdapter:
        model, pretrained = build_image_model(architecture, outputs)
        return cls(architecture, model, outputs, pretrained)

    @classmethod
    def load(cls, folder: Path) -> ImageAdapter:
        import json

        from safetensors.torch import load_file

        saved = json.loads((folder / "image_model.json").read_text(encoding="utf-8"))
        model, _ = build_image_model(saved["architecture"], saved["outputs"], pretrained=False)
        model.load_state_dict(load_file(folder / "model.safetensors"))
        return cls(saved["architecture"], model, saved["outputs"], saved["pretrained"])

    def encode(self, data: PreparedData) -> list[str]:
        return list(data.images)

    def batches(self, encoded: list[str], targets: torch.Tensor | None, order: np.ndarray,
                batch_size: int) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor | None]]:
        transform = self.train_transform if self.model.training else self.eval_transform
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            pixels = torch.stack([transform(read_image(encoded[i])) for i in positions])
            yield {"pixels": pixels}, None if targets is None else targets[positions]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(inputs["pixels"])

    def save(self, folder: Path) -> dict:
        import json

        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({name: tensor.contiguous() for name, tensor in self.model.state_dict().items()},
                  folder / "model.safetensors")
        (folder / "image_model.json").write_text(json.dumps({"architecture": self.architecture,
                                                             "outputs": self.outputs,
                                                             "pretrained": self.pretrained}), encoding="utf-8")
        return {"pretrained": self.pretrained}
