"""The Images page and image runs on the Predict page, with Streamlit's AppTest."""

import io
import zipfile

import pytest

from test_app import open_app, texts, wait_until_finished
from test_images import labels_table, labels_zip, mixed_modes_zip, scan_bytes
from edutune_core.runstore import RunStore


def upload_zip(at, data: bytes, name: str = "homework.zip"):
    at.file_uploader(key="images_zip").set_value((name, data, "application/zip")).run()
    assert not at.exception, at.exception
    return at


def test_images_page_lists_counts_and_unreadable(edutune_home):
    at = upload_zip(open_app("pages/images.py"), mixed_modes_zip())

    assert "Found 13 images in 2 classes." in texts(at)
    counts = at.dataframe[0].value
    assert dict(zip(counts["Class"], counts["Images"])) == {"light": 7, "dark": 6}
    assert "1 file(s) could not be read as images and are left out." in texts(at)
    assert "homework/dark/corrupt.png" in at.code[0].value
    assert at.button(key="images_start") is not None


def test_images_page_says_weights_are_missing(edutune_home, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    at = upload_zip(open_app("pages/images.py", lang="zh"), mixed_modes_zip())
    at.selectbox(key="images_model").set_value("efficientnet_b0").run()

    warning = next(element.value for element in at.warning if "随机权重" in element.value)
    assert "efficientnet_b0_rwightman-7f5810bc.pth" in warning
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in warning


def test_images_page_not_a_zip_message(edutune_home):
    at = upload_zip(open_app("pages/images.py"), b"name,score\nAda,3\n", "scores.zip")

    assert len(at.error) == 1
    assert '"scores.zip" is not a zip file.' in at.error[0].value


def test_images_page_single_class_message(edutune_home):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(4):
            archive.writestr(f"only/{index}.png", scan_bytes((200, 200, 200)))
    at = upload_zip(open_app("pages/images.py", lang="zh"), buffer.getvalue())

    assert "至少需要两个" in at.error[0].value


def test_images_page_labels_table(edutune_home):
    at = open_app("pages/images.py")
    at.radio(key="images_source").set_value("table").run()
    upload_zip(at, labels_zip(), "scans.zip")
    assert "Upload the labels table" in texts(at)
    csv = labels_table().to_csv(index=False).encode("utf-8")
    at.file_uploader(key="images_labels").set_value(("labels.csv", csv, "text/csv")).run()
    assert not at.exception, at.exception

    assert at.selectbox(key="images_file_column").value == "file"
    assert at.selectbox(key="images_label_column").value == "grade"
    assert "Found 12 images in 2 classes." in texts(at)
    assert "1 image(s) in the zip have no row in the labels table" in texts(at)
    assert "1 file name(s) in the labels table match no image in the zip." in texts(at)

    at.selectbox(key="images_file_column").set_value("student").run()
    assert 'No file name in column "student" of "labels.csv"' in at.error[0].value


def test_images_page_too_few_images_message(edutune_home):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(10):
            archive.writestr(f"light/{index}.png", scan_bytes((235, 235, 235)))
        archive.writestr("dark/0.png", scan_bytes((40, 40, 40)))
    at = upload_zip(open_app("pages/images.py"), buffer.getvalue())
    at.button(key="images_start").click().run()
    assert not at.exception, at.exception

    assert len(at.error) == 1
    assert "dark" in at.error[0].value
    assert RunStore(edutune_home).list_runs() == []


def test_small_validation_share_still_has_every_class(edutune_home):
    at = upload_zip(open_app("pages/images.py"), mixed_modes_zip())
    at.selectbox(key="images_size").set_value(32).run()
    at.number_input(key="images_epochs").set_value(1).run()
    at.slider(key="images_validation_share").set_value(0.05).run()
    at.button(key="images_start").click().run()
    assert not at.exception, at.exception
    wait_until_finished(at)

    record = RunStore(edutune_home).list_runs()[0]
    assert record.status == "completed", record.error


def test_image_run_from_page_to_prediction(edutune_home):
    at = upload_zip(open_app("pages/images.py"), mixed_modes_zip())
    at.selectbox(key="images_model").set_value("mobilenet_v3_small").run()
    at.selectbox(key="images_size").set_value(32).run()
    at.number_input(key="images_epochs").set_value(2).run()
    at.number_input(key="images_batch_size").set_value(4).run()
    at.slider(key="images_perspective").set_value(0.1).run()
    at.button(key="images_start").click().run()
    assert not at.exception, at.exception
    wait_until_finished(at)

    record = RunStore(edutune_home).list_runs()[0]
    assert record.status == "completed", record.error
    assert record.task == "image_classification"
    assert record.config["train"]["image_size"] == 32
    assert record.config["train"]["augmentation"]["perspective"] == 0.1
    assert record.summary["unreadable_count"] == 1
    assert len(at.get("plotly_chart")) >= 2

    at = open_app("pages/predict.py")
    assert not at.text_area, "an image run must not offer a text box"
    at.file_uploader(key="predict_image").set_value(("new.png", scan_bytes((40, 40, 40), "RGBA"), "image/png")).run()
    at.button(key="predict_one_image").click().run()
    assert not at.exception, at.exception
    assert "Prediction:" in at.success[0].value
    probabilities = at.dataframe[0].value
    assert sorted(probabilities["Class"]) == ["dark", "light"]
    assert probabilities["Probability"].sum() == pytest.approx(1, abs=0.01)

    at.file_uploader(key="predict_image").set_value(("bad.png", b"broken", "image/png")).run()
    at.button(key="predict_one_image").click().run()
    assert '"bad.png" is not an image that can be read.' in at.error[0].value


@pytest.mark.parametrize("lang, words", [("en", "2000"), ("zh", "2000")])
def test_images_epochs_out_of_range_named(edutune_home, lang, words):
    """A typed value outside the allowed range is shown with its range, not silently replaced."""
    at = upload_zip(open_app("pages/images.py", lang=lang), mixed_modes_zip())
    at.number_input(key="images_epochs").set_value(2000).run()
    assert not at.exception, at.exception
    assert at.number_input(key="images_epochs").value == 2000
    assert any(words in error.value and "1000" in error.value for error in at.error), [e.value for e in at.error]
    assert at.button(key="images_start").disabled
    assert RunStore(edutune_home).list_runs() == []
