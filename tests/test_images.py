"""Image classification end to end on tiny images made here."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import ROOT
from edutune_core.config import TrainConfig
from edutune_core.i18n import DataError
from edutune_core.images import (
    Augmentation,
    build_transforms,
    cached_weights,
    image_mapping,
    load_class_folders,
    load_labelled_images,
    predict_image,
    propose_label_columns,
    read_image,
    unpack_class_folders,
    zip_image_names,
)
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore


def image_bytes(color, mode: str = "RGB", rotate_exif: bool = False) -> bytes:
    image = Image.new("RGB", (24, 16), color)
    buffer = io.BytesIO()
    if mode == "L":
        image.convert("L").save(buffer, "PNG")
    elif mode == "P":
        image.convert("P").save(buffer, "PNG")
    elif mode == "RGBA":
        image.convert("RGBA").save(buffer, "PNG")
    elif rotate_exif:
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
        image.save(buffer, "JPEG", exif=exif)
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


def scans_zip() -> bytes:
    buffer = io.BytesIO()
    modes = ["RGB", "L", "P", "RGBA"]
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(12):
            archive.writestr(f"scans/tick/{index}.png", image_bytes((20, 200, 20), modes[index % 4]))
            archive.writestr(f"scans/cross/{index}.png", image_bytes((200, 20, 20), modes[index % 4]))
        archive.writestr("scans/tick/rotated.jpg", image_bytes((20, 200, 20), rotate_exif=True))
        archive.writestr("scans/cross/broken.png", b"not an image")
        archive.writestr("scans/notes.txt", b"ignored")
    return buffer.getvalue()


def test_unpack_converts_and_lists_unreadable(tmp_path):
    frame, unreadable = unpack_class_folders(scans_zip(), "scans.zip", tmp_path)
    assert unreadable == ["scans/cross/broken.png"]
    assert frame["label"].value_counts().to_dict() == {"tick": 13, "cross": 12}
    rotated = read_image(tmp_path / "scans" / "tick" / "rotated.jpg")
    assert rotated.size == (16, 24)
    assert all(read_image(path).mode == "RGB" for path in frame["image"])


@pytest.mark.parametrize("entries, key", [
    ({"../escape/a.png": b"x", "b/c.png": b"y"}, "images.unsafe_path"),
    ({"only/a.png": image_bytes((0, 0, 0))}, "images.too_few_classes"),
])
def test_unpack_rejects_bad_zips(tmp_path, entries, key):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    with pytest.raises(DataError) as raised:
        unpack_class_folders(buffer.getvalue(), "upload.zip", tmp_path)
    assert raised.value.key == key
    assert "upload.zip" in raised.value.message("zh")


def test_not_a_zip_is_explained(tmp_path):
    with pytest.raises(DataError) as raised:
        unpack_class_folders(b"plain text", "scans.csv", tmp_path)
    assert raised.value.message("en").startswith('"scans.csv" is not a zip file.')


def test_image_classifier_trains_from_the_command_line(tmp_path):
    data = tmp_path / "scans.zip"
    data.write_bytes(scans_zip())
    environment = {**os.environ, "EDUTUNE_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "edutune_core", "train", "--data", str(data), "--target", "label",
                             "--model", "mobilenet_v3_small", "--epochs", "2", "--batch-size", "8", "--json"],
                            capture_output=True, text=True, cwd=ROOT, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "skipped unreadable image: scans/cross/broken.png" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 <= summary["accuracy"] <= 1
    predictor = Predictor(summary["run_dir"])
    frame, _ = unpack_class_folders(scans_zip(), "scans.zip", tmp_path / "again")
    predicted = predictor.predict_frame(frame.drop(columns=["label"]))
    assert set(predicted.values) <= {"tick", "cross"}
    saved = json.loads((Path(summary["run_dir"]) / "model" / "image_model.json").read_text())
    assert saved["architecture"] == "mobilenet_v3_small"
    assert saved["pretrained"] is (cached_weights("mobilenet_v3_small") is not None)


# Scans of 32x32 pixels in every colour mode, through the engine from zip to prediction.

def scan_bytes(color, mode: str = "RGB", file_format: str = "PNG", orientation: int | None = None,
               size: tuple[int, int] = (32, 32)) -> bytes:
    image = Image.new("RGB", size, color)
    # A dark bar along the top edge shows which way up the image is.
    image.paste((0, 0, 0), (0, 0, size[0], 4))
    buffer = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(buffer, "JPEG", exif=exif, quality=95)
    elif mode == "P":
        # An adaptive palette keeps the exact colours; the default web palette rounds them.
        image.convert("P", palette=Image.Palette.ADAPTIVE).save(buffer, file_format)
    else:
        image.convert(mode).save(buffer, file_format)
    return buffer.getvalue()


def mixed_modes_zip(per_class: int = 6) -> bytes:
    """Two classes of 32x32 scans: light ones and dark ones, in RGB, L, P and RGBA, plus odd files."""
    modes = ["RGB", "L", "P", "RGBA"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(per_class):
            mode = modes[index % len(modes)]
            archive.writestr(f"homework/light/{index}_{mode}.png", scan_bytes((235, 235, 235), mode))
            archive.writestr(f"homework/dark/{index}_{mode}.png", scan_bytes((40, 40, 40), mode))
        archive.writestr("homework/light/turned.jpg", scan_bytes((235, 235, 235), orientation=6, size=(32, 48)))
        archive.writestr("homework/dark/corrupt.png", b"\x89PNG\r\n\x1a\n not really")
        archive.writestr("__MACOSX/homework/light/._0_RGB.png", b"resource fork")
        archive.writestr("homework/readme.txt", b"not an image")
    return buffer.getvalue()


def test_read_image_converts_every_mode_to_rgb(tmp_path):
    cases = {"gray.png": ("L", (235, 235, 235)), "palette.png": ("P", (235, 235, 235)),
             "alpha.png": ("RGBA", (235, 235, 235)), "rgb.bmp": ("RGB", (235, 235, 235)),
             "cmyk.jpg": ("CMYK", (235, 235, 235))}
    for name, (mode, color) in cases.items():
        path = tmp_path / name
        path.write_bytes(scan_bytes(color, mode, "JPEG" if name.endswith(".jpg") else name.rsplit(".")[-1].upper()))
        image = read_image(path)
        assert image.mode == "RGB", name
        assert image.size == (32, 32), name
        assert abs(image.getpixel((16, 20))[0] - 235) <= 3, name


def test_read_image_puts_transparency_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(path)
    assert read_image(path).getpixel((4, 4)) == (255, 255, 255)


def test_read_image_scales_16_bit_gray(tmp_path):
    path = tmp_path / "deep.png"
    values = np.zeros((8, 8), dtype=np.uint16)
    values[:, 4:] = 4000
    Image.fromarray(values).save(path)
    image = read_image(path)
    assert image.getpixel((0, 0)) == (0, 0, 0)
    assert image.getpixel((7, 7)) == (255, 255, 255)


def test_read_image_follows_exif_rotation(tmp_path):
    path = tmp_path / "turned.jpg"
    path.write_bytes(scan_bytes((235, 235, 235), orientation=6, size=(32, 48)))
    image = read_image(path)
    assert image.size == (48, 32)
    # Orientation 6 turns the top edge to the right side.
    assert image.getpixel((46, 16))[0] < 60
    assert image.getpixel((1, 16))[0] > 200


def test_read_image_rejects_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(OSError):
        read_image(path)


def test_class_folders_count_and_skip(tmp_path):
    images = load_class_folders(mixed_modes_zip(), "homework.zip", tmp_path)
    assert images.class_counts() == {"light": 7, "dark": 6}
    assert images.unreadable == ["homework/dark/corrupt.png"]
    assert not (tmp_path / "__MACOSX").exists()
    assert images.summary()["unreadable_count"] == 1


def labels_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(6):
            archive.writestr(f"batch1/scan_{index:02d}.png", scan_bytes((235, 235, 235), "L"))
            archive.writestr(f"batch2/scan_{index + 10:02d}.PNG", scan_bytes((40, 40, 40), "P"))
        archive.writestr("batch2/extra.png", scan_bytes((40, 40, 40)))
        archive.writestr("batch2/broken.jpg", b"no")
    return buffer.getvalue()


def labels_table() -> pd.DataFrame:
    rows = [{"student": f"S{index}", "file": f"scan_{index:02d}.png", "grade": "pass"} for index in range(6)]
    rows += [{"student": f"S{index}", "file": f"batch2\\scan_{index:02d}.png", "grade": "fail"}
             for index in range(10, 16)]
    rows += [{"student": "S99", "file": "absent.png", "grade": "pass"}]
    return pd.DataFrame(rows)


def test_labels_table_matches_file_names(tmp_path):
    table = labels_table()
    assert propose_label_columns(table, zip_image_names(labels_zip(), "scans.zip")) == ("file", "grade")
    images = load_labelled_images(labels_zip(), "scans.zip", table, "labels.csv", tmp_path, "file", "grade")
    assert images.class_counts() == {"pass": 6, "fail": 6}
    assert images.missing == ["absent.png"]
    assert images.unlabelled == ["batch2/extra.png"]
    assert images.unreadable == ["batch2/broken.jpg"]


def test_labels_table_wrong_column_is_explained(tmp_path):
    with pytest.raises(DataError) as raised:
        load_labelled_images(labels_zip(), "scans.zip", labels_table(), "labels.csv", tmp_path, "student", "grade")
    assert raised.value.key == "images.no_matching_files"
    assert "labels.csv" in raised.value.message("zh")
    with pytest.raises(DataError) as raised:
        load_labelled_images(labels_zip(), "scans.zip", labels_table(), "labels.csv", tmp_path, "file", "lable")
    assert raised.value.key == "data.missing_column"


def test_augmentation_settings_are_checked():
    config = TrainConfig.for_task(False, model="resnet18", image_size=16,
                                  augmentation={"rotation": 90, "crop": 0.2, "contrast": 0.1})
    settings = sorted(problem.params["setting"] for problem in config.problems())
    assert settings == ["augmentation.crop", "augmentation.rotation", "image_size"]


def test_augmentation_off_keeps_pixels():
    training, evaluation = build_transforms(32, Augmentation.off())
    image = Image.new("RGB", (40, 30), (200, 100, 50))
    assert torch.equal(training(image), evaluation(image))
    assert training(image).shape == (3, 32, 32)


@pytest.mark.parametrize("architecture", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
def test_image_run_trains_and_predicts(tmp_path, architecture):
    images = load_class_folders(mixed_modes_zip(), "homework.zip", tmp_path / "images")
    store = RunStore(tmp_path / "home")
    config = TrainConfig.for_task(False, model=architecture, epochs=1, batch_size=5, image_size=32,
                                  learning_rate=1e-3, augmentation={"rotation": 5, "perspective": 0.1})
    record = create_run(store, images.frame, image_mapping(), config, data_name="homework.zip",
                        extra_summary=images.summary())
    record = execute_run(store, record.run_id)
    assert record.status == "completed", record.error
    assert record.summary["label_counts"] == {"dark": 6, "light": 7}
    assert record.summary["unreadable_images"] == ["homework/dark/corrupt.png"]

    predictor = Predictor(record.run_dir)
    assert predictor.input_columns == ["image"]
    result = predict_image(predictor, scan_bytes((235, 235, 235), "P"), "new.png")
    assert result.values[0] in {"light", "dark"}
    assert result.raw.shape == (1, 2)
    saved = json.loads((record.run_dir / "model" / "image_model.json").read_text())
    assert saved["image_size"] == 32
    assert saved["augmentation"]["perspective"] == 0.1
    with pytest.raises(DataError) as raised:
        predict_image(predictor, b"not an image", "photo.png")
    assert raised.value.key == "images.unreadable_upload"


def test_lone_image_batch_trains(tmp_path):
    images = load_class_folders(mixed_modes_zip(per_class=5), "homework.zip", tmp_path / "images")
    store = RunStore(tmp_path / "home")
    config = TrainConfig.for_task(False, model="resnet18", epochs=1, batch_size=1, image_size=32)
    record = execute_run(store, create_run(store, images.frame, image_mapping(), config,
                                           data_name="homework.zip").run_id)
    assert record.status == "completed", record.error
