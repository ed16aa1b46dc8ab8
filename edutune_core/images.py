"""Image classification with torchvision models: reading scans, the model and its adapter.

Images arrive as a zip with one folder per class, or as a zip of images with a table
(CSV or Excel) of file names and labels. Every image is read with Pillow, turned upright
by its EXIF orientation and converted to RGB (grayscale, 16-bit, palette, CMYK and alpha
images included); files that cannot be read are listed, not fatal. Models are ResNet-18,
MobileNet V3 (small) and EfficientNet-B0 from torchvision, with their ImageNet weights
when the weight file is already in the local torch cache, else from random weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from edutune_core.i18n import DataError
from edutune_core.tasks import CLASSIFICATION, ColumnMapping, PreparedData

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_IMAGES = 20000
MAX_UNZIPPED_BYTES = 2 * 2**30
IMAGE_SIZE = 224
# Column names of the (image, label) table that every image source is turned into.
IMAGE_COLUMN = "image"
LABEL_COLUMN = "label"
# Folders and files that zip tools add beside the images (macOS resource forks, thumbnails).
_SKIPPED_PARTS = ("__MACOSX",)
_SKIPPED_NAMES = ("thumbs.db", "desktop.ini")
# torchvision builder, weights enum name, and the attribute path of the classifier layer.
ARCHITECTURES = {
    "resnet18": ("resnet18", "ResNet18_Weights", "fc"),
    "mobilenet_v3_small": ("mobilenet_v3_small", "MobileNet_V3_Small_Weights", "classifier.3"),
    "efficientnet_b0": ("efficientnet_b0", "EfficientNet_B0_Weights", "classifier.1"),
}


def read_image(path: str | Path) -> Image.Image:
    """Open an image upright and in RGB.

    Transparent parts (RGBA, LA, PA and palette images with a transparent colour) are
    drawn on white, the colour of paper, and 16-bit or float grayscale is scaled to
    8 bits by its own range. Only the first frame of an animated or multi-page file
    is read.

    Raises:
        OSError: The file is not an image Pillow can decode (``UnidentifiedImageError``
            is a subclass), or it is truncated.
        Image.DecompressionBombError: The image has more pixels than Pillow allows.
    """
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        if upright.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            upright = _scale_to_8_bits(upright)
        if upright.mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
            upright = upright.convert("RGBA")
            background = Image.new("RGBA", upright.size, "white")
            upright = Image.alpha_composite(background, upright)
        return upright.convert("RGB")


def _scale_to_8_bits(image: Image.Image) -> Image.Image:
    # Pillow's convert("L") clips 16-bit values at 255 instead of scaling them, which
    # turns most scans white.
    values = np.asarray(image, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(scaled.round().astype(np.uint8), mode="L")


def is_readable(path: Path) -> bool:
    """Tell whether ``path`` is an image that ``read_image`` can open."""
    try:
        read_image(path)
    except (OSError, Image.DecompressionBombError, ValueError) as error:
        logger.info("unreadable image %s: %s", path, error)
        return False
    return True


@dataclass
class ImageSet:
    """Images unpacked from an upload, with their labels and what could not be used.

    Attributes:
        frame: One row per readable, labelled image: its file path (``image``) and its
            class (``label``).
        unreadable: Zip paths of files with an image suffix that cannot be read.
        unlabelled: Zip paths of readable images that no row of the labels table names.
        missing: File names from the labels table that match no image in the zip.
        source: ``"folders"`` or ``"table"``.
    """

    frame: pd.DataFrame
    unreadable: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    source: str = "folders"

    def class_counts(self) -> dict[str, int]:
        """Return the number of images per class, largest class first."""
        return {str(label): int(count) for label, count in self.frame[LABEL_COLUMN].value_counts().items()}

    def summary(self) -> dict:
        """Describe the set for a run's record: counts and the names of skipped files, no image data."""
        return {"image_source": self.source, "unreadable_images": self.unreadable[:100],
                "unreadable_count": len(self.unreadable), "unlabelled_count": len(self.unlabelled),
                "missing_count": len(self.missing)}


def image_mapping() -> ColumnMapping:
    """Return the column mapping of an (image, label) table."""
    return ColumnMapping(target=LABEL_COLUMN, image_column=IMAGE_COLUMN, problem=CLASSIFICATION)


def image_folder(home: Path, data: bytes) -> Path:
    """Return the folder under the data folder ``home`` where the zip ``data`` is unpacked.

    The name comes from the zip's SHA-256, so the same upload reuses its folder.
    """
    return Path(home) / "images" / hashlib.sha256(data).hexdigest()[:16]


def unpack_class_folders(data: bytes, file_name: str, folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """Extract a zip of class folders into ``folder``; return (image, label) rows and unreadable files.

    The class of an image is the name of the folder it is in, so ``scans/A/1.png`` and
    ``A/1.png`` are both class ``A``. Files directly at the top of the zip are skipped.

    Raises:
        DataError: The file is not a zip, escapes the folder, is too large, or has fewer
            than two classes.
    """
    images = load_class_folders(data, file_name, folder)
    return images.frame, images.unreadable


def load_class_folders(data: bytes, file_name: str, folder: Path) -> ImageSet:
    """Extract a zip of class folders into ``folder`` and return its images by class.

    Raises:
        DataError: See ``unpack_class_folders``.
    """
    rows, unreadable = [], []
    for member, target in _extract_images(data, file_name, folder):
        parts = PurePosixPath(member).parts
        if len(parts) < 2:
            continue
        if not is_readable(target):
            unreadable.append(member)
            continue
        rows.append({IMAGE_COLUMN: str(target), LABEL_COLUMN: parts[-2]})
    frame = pd.DataFrame(rows, columns=[IMAGE_COLUMN, LABEL_COLUMN])
    if frame[LABEL_COLUMN].nunique() < 2:
        raise DataError("images.too_few_classes", file=file_name, classes=frame[LABEL_COLUMN].nunique())
    return ImageSet(frame, unreadable, source="folders")


def zip_image_names(data: bytes, file_name: str) -> list[str]:
    """List the paths of the image files in a zip, without extracting it.

    Raises:
        DataError: The file is not a zip, or it is too large or unsafe.
    """
    archive = _open_zip(data, file_name)
    members = [member for member in archive.infolist() if not member.is_dir()]
    _check_members(members, file_name)
    return [member.filename for member in members if _is_image_member(member.filename)]


def propose_label_columns(labels: pd.DataFrame, image_names: list[str]) -> tuple[str, str]:
    """Guess which column of a labels table names the image files and which contains the class.

    The file column is the one whose values match the most images of the zip. The label
    column is the first other column named like a label, else the other column with the
    fewest distinct values.

    Raises:
        DataError: The table has fewer than two columns.
    """
    columns = list(labels.columns)
    if len(columns) < 2:
        raise DataError("images.labels_need_two_columns", columns=", ".join(map(str, columns)))
    index = _name_index(image_names)
    matches = {column: labels[column].map(lambda value: _match_name(value, index) is not None).sum()
               for column in columns}
    file_column = max(columns, key=lambda column: (matches[column], -columns.index(column)))
    others = [column for column in columns if column != file_column]
    hints = ("label", "class", "category", "grade", "score", "类别", "标签", "等级")
    named = [column for column in others if any(hint in str(column).lower() for hint in hints)]
    label_column = named[0] if named else min(others, key=lambda column: labels[column].nunique())
    return file_column, label_column


def load_labelled_images(data: bytes, file_name: str, labels: pd.DataFrame, labels_name: str, folder: Path,
                         file_column: str, label_column: str) -> ImageSet:
    """Extract a zip of images into ``folder`` and label them from a table.

    A file name in ``file_column`` matches an image by its path inside the zip, else by
    its file name, else by its file name without suffix. A name that matches several
    images (the same file name in two folders) must be given as the path. Letter case and
    backslashes are ignored. Rows with an empty label are left out.

    Raises:
        DataError: The zip is invalid (see ``zip_image_names``), a column is missing, no
            row matches an image, or fewer than two classes remain.
    """
    for column in (file_column, label_column):
        if column not in labels.columns:
            raise DataError("data.missing_column", column=column, columns=", ".join(map(str, labels.columns)))
    extracted = dict(_extract_images(data, file_name, folder))
    index = _name_index(list(extracted))
    labelled: dict[str, str] = {}
    missing = []
    for name, label in zip(labels[file_column], labels[label_column]):
        if pd.isna(label) or not str(label).strip():
            continue
        member = _match_name(name, index)
        if member is None:
            missing.append(str(name))
        else:
            labelled[member] = _label_text(label)
    if not labelled:
        raise DataError("images.no_matching_files", file=labels_name, column=file_column, zip=file_name,
                        examples=", ".join(list(extracted)[:3]))
    rows, unreadable, unlabelled = [], [], []
    for member, target in extracted.items():
        if not is_readable(target):
            unreadable.append(member)
        elif member in labelled:
            rows.append({IMAGE_COLUMN: str(target), LABEL_COLUMN: labelled[member]})
        else:
            unlabelled.append(member)
    frame = pd.DataFrame(rows, columns=[IMAGE_COLUMN, LABEL_COLUMN])
    if frame[LABEL_COLUMN].nunique() < 2:
        raise DataError("images.too_few_labels", file=labels_name, column=label_column,
                        classes=frame[LABEL_COLUMN].nunique())
    return ImageSet(frame, unreadable, unlabelled, missing, source="table")


def _label_text(value: object) -> str:
    # A spreadsheet stores class 1 as the number 1.0; the class name is "1".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _name_index(members: list[str]) -> dict[str, str | None]:
    """Map each lookup key (path, file name, stem; lower case) to its zip path, or None when ambiguous."""
    index: dict[str, str | None] = {}
    for member in members:
        path = PurePosixPath(member)
        for key in {member.lower(), path.name.lower(), path.stem.lower()}:
            index[key] = member if index.get(key, member) == member else None
    return index


def _match_name(value: object, index: dict[str, str | None]) -> str | None:
    if pd.isna(value):
        return None
    name = str(value).strip().replace("\\", "/").lower().removeprefix("./")
    for key in (name, PurePosixPath(name).name, PurePosixPath(name).stem):
        if index.get(key):
            return index[key]
    return None


def _open_zip(data: bytes, file_name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError("images.not_zip", file=file_name) from None


def _is_image_member(name: str) -> bool:
    path = PurePosixPath(name)
    if any(part in _SKIPPED_PARTS or part.startswith(".") for part in path.parts):
        return False
    return path.suffix.lower() in IMAGE_SUFFIXES and path.name.lower() not in _SKIPPED_NAMES


def _extract_images(data: bytes, file_name: str, folder: Path) -> Iterator[tuple[str, Path]]:
    """Write every image file of the zip under ``folder`` and yield (zip path, file path)."""
    archive = _open_zip(data, file_name)
    members = [member for member in archive.infolist() if not member.is_dir()]
    _check_members(members, file_name)
    for member in members:
        if not _is_image_member(member.filename):
            continue
        target = folder / Path(*PurePosixPath(member.filename).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            content = archive.read(member)
        except (zipfile.BadZipFile, OSError, NotImplementedError) as error:
            # A damaged entry or an unsupported compression: the file is unreadable, the rest is used.
            logger.info("cannot extract %s from %s: %s", member.filename, file_name, error)
            content = b""
        target.write_bytes(content)
        yield member.filename, target


def _check_members(members: list[zipfile.ZipInfo], file_name: str) -> None:
    if len(members) > MAX_IMAGES:
        raise DataError("images.too_many", file=file_name, count=len(members), maximum=MAX_IMAGES)
    if sum(member.file_size for member in members) > MAX_UNZIPPED_BYTES:
        raise DataError("images.too_large", file=file_name, limit=MAX_UNZIPPED_BYTES // 2**30)
    for member in members:
        path = PurePosixPath(member.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
            raise DataError("images.unsafe_path", file=file_name, path=member.filename)


def weights_file(architecture: str) -> Path:
    """Return where torchvision looks for the ImageNet weights of ``architecture``.

    torchvision downloads weights into ``<torch hub dir>/checkpoints/`` (``$TORCH_HOME``,
    by default ``~/.cache/torch/hub``) under the file name of their URL; a file copied
    there from another computer is used without any network.
    """
    import torchvision.models as models

    weights = getattr(models, ARCHITECTURES[architecture][1]).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]


def cached_weights(architecture: str):
    """Return the torchvision weights enum when its file is in the torch cache, else None."""
    import torchvision.models as models

    weights = getattr(models, ARCHITECTURES[architecture][1]).DEFAULT
    return weights if weights_file(architecture).is_file() else None


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


@dataclass
class Augmentation:
    """Random changes applied to each training image, suited to scanned or photographed pages.

    Scans are upright and framed, so the changes are small, and there are no flips,
    because a mirrored letter or digit is a different sign. Every value 0 (crop 1.0)
    turns its change off.

    Attributes:
        rotation: Maximum rotation in degrees, either way; the corners are filled white.
        crop: Smallest share of the image area kept by a random crop (0.5 – 1.0), which
            is then resized to the model's input size.
        contrast: Maximum relative change of contrast; brightness changes by half as much.
        perspective: Strength of a random perspective distortion (0 – 0.5), like a page
            photographed at a slant. It is applied to half of the images.
    """

    rotation: float = 5.0
    crop: float = 0.85
    contrast: float = 0.2
    perspective: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> Augmentation:
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (values or {}).items() if key in names})

    @classmethod
    def off(cls) -> Augmentation:
        return cls(rotation=0.0, crop=1.0, contrast=0.0, perspective=0.0)


def build_transforms(image_size: int, augmentation: Augmentation):
    """Return the (training, evaluation) transforms from an RGB image to a normalised tensor."""
    from torchvision import transforms

    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    evaluation = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor(), normalize])
    steps = []
    if augmentation.rotation > 0:
        steps.append(transforms.RandomRotation(augmentation.rotation, fill=255))
    if augmentation.perspective > 0:
        steps.append(transforms.RandomPerspective(augmentation.perspective, p=0.5, fill=255))
    if augmentation.crop < 1:
        steps.append(transforms.RandomResizedCrop(image_size, scale=(augmentation.crop, 1.0)))
    else:
        steps.append(transforms.Resize((image_size, image_size)))
    if augmentation.contrast > 0:
        steps.append(transforms.ColorJitter(contrast=augmentation.contrast, brightness=augmentation.contrast / 2))
    training = transforms.Compose([*steps, transforms.ToTensor(), normalize])
    return training, evaluation


class ImageAdapter:
    """The adapter interface of ``edutune_core.adapters`` for torchvision classifiers."""

    kind = "image"

    def __init__(self, architecture: str, model: torch.nn.Module, outputs: int, pretrained: bool,
                 image_size: int = IMAGE_SIZE, augmentation: Augmentation | None = None) -> None:
        self.architecture, self.model, self.outputs, self.pretrained = architecture, model, outputs, pretrained
        self.image_size = image_size
        self.augmentation = augmentation or Augmentation()
        self.train_transform, self.eval_transform = build_transforms(image_size, self.augmentation)

    @classmethod
    def create(cls, architecture: str, outputs: int, image_size: int = IMAGE_SIZE,
               augmentation: Augmentation | None = None) -> ImageAdapter:
        model, pretrained = build_image_model(architecture, outputs)
        return cls(architecture, model, outputs, pretrained, image_size, augmentation)

    @classmethod
    def load(cls, folder: Path) -> ImageAdapter:
        import json

        from safetensors.torch import load_file

        saved = json.loads((folder / "image_model.json").read_text(encoding="utf-8"))
        model, _ = build_image_model(saved["architecture"], saved["outputs"], pretrained=False)
        model.load_state_dict(load_file(folder / "model.safetensors"))
        return cls(saved["architecture"], model, saved["outputs"], saved["pretrained"],
                   saved.get("image_size", IMAGE_SIZE), Augmentation.from_dict(saved.get("augmentation")))

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
        pixels = inputs["pixels"]
        if not (self.model.training and len(pixels) == 1):
            return self.model(pixels)
        # Batch normalisation cannot compute batch statistics from one image whose
        # feature map is 1x1 (small input sizes), so a lone image (batch size 1, or the
        # last row of an epoch) uses the running statistics instead.
        norms = [module for module in self.model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
        for module in norms:
            module.eval()
        try:
            return self.model(pixels)
        finally:
            for module in norms:
                module.train()

    def save(self, folder: Path) -> dict:
        import json

        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({name: tensor.contiguous() for name, tensor in self.model.state_dict().items()},
                  folder / "model.safetensors")
        saved = {"architecture": self.architecture, "outputs": self.outputs, "pretrained": self.pretrained,
                 "image_size": self.image_size, "augmentation": self.augmentation.to_dict()}
        (folder / "image_model.json").write_text(json.dumps(saved), encoding="utf-8")
        return {"pretrained": self.pretrained}


def predict_image(predictor, data: bytes, file_name: str):
    """Predict the class of one uploaded image with a trained image ``Predictor``.

    The bytes go to a temporary file that is removed afterwards.

    Returns:
        The ``edutune_core.predict.Prediction`` for the image.

    Raises:
        DataError: ``data`` is not an image that can be read.
    """
    suffix = PurePosixPath(file_name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="edutune-image-") as folder:
        path = Path(folder) / f"upload{suffix if suffix in IMAGE_SUFFIXES else '.img'}"
        path.write_bytes(data)
        if not is_readable(path):
            raise DataError("images.unreadable_upload", file=file_name)
        frame = pd.DataFrame({predictor.mapping.image_column: [str(path)]})
        return predictor.predict_frame(frame)
