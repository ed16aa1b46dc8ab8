"""Image classification end to end on tiny images made here."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT
from edutune_core.i18n import DataError
from edutune_core.images import cached_weights, read_image, unpack_class_folders
from edutune_core.predict import Predictor


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
