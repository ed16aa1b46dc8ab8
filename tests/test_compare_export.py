"""Compare chart export: PNG and SVG drawn by Kaleido with the system Chromium, and the page's buttons."""

import os
import struct
import xml.etree.ElementTree as ElementTree

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_gradebook
from edutune_core.compare import ChartImageError, chromium_path, figure_image
from edutune_core.config import TrainConfig
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import REGRESSION, ColumnMapping

needs_browser = pytest.mark.skipif(chromium_path() is None, reason="no Chrome or Chromium is installed")


def small_figure() -> go.Figure:
    figure = go.Figure()
    figure.add_scatter(x=[1, 2, 3, 4], y=[0.9, 0.6, 0.45, 0.4], mode="lines+markers", name="run A")
    figure.add_scatter(x=[1, 2, 3, 4], y=[0.8, 0.7, 0.5, 0.35], mode="lines", name="run B")
    figure.update_layout(title="validation loss", width=640, height=360)
    return figure


@needs_browser
def test_png_has_signature_and_size():
    image = figure_image(small_figure(), "png")
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", image[16:24])
    assert (width, height) == (640, 360)
    assert 5_000 < len(image) < 2_000_000


@needs_browser
def test_png_scale_and_default_size():
    figure = small_figure()
    figure.update_layout(width=None, height=None)
    image = figure_image(figure, "png", scale=2)
    assert struct.unpack(">II", image[16:24]) == (2000, 900)


@needs_browser
def test_svg_parses_as_xml_with_traces():
    image = figure_image(small_figure(), "svg")
    root = ElementTree.fromstring(image)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == "640"
    assert root.get("height") == "360"
    text = "".join(root.itertext())
    assert "run A" in text
    assert "run B" in text
    assert "validation loss" in text


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="jpeg"):
        figure_image(small_figure(), "jpeg")


def test_missing_browser_gives_bilingual_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    assert chromium_path() is None
    with pytest.raises(ChartImageError) as raised:
        figure_image(small_figure(), "png")
    assert raised.value.key == "compare.image_no_browser"
    assert "Chromium" in raised.value.message("en")
    assert "没有找到" in raised.value.message("zh")


def test_non_executable_browser_path_is_missing(monkeypatch, tmp_path):
    program = tmp_path / "chromium"
    program.write_text("#!/bin/sh\n")
    monkeypatch.setenv("BROWSER_PATH", str(program))
    assert chromium_path() is None


@needs_browser
def test_system_chromium_sets_browser_path_only_when_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", "placeholder")
    monkeypatch.delenv("BROWSER_PATH")
    found = chromium_path()
    assert found is not None
    assert os.environ["BROWSER_PATH"] == found

    program = tmp_path / "my-chrome"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(program))
    assert chromium_path() == str(program)
    assert os.environ["BROWSER_PATH"] == str(program)


@pytest.fixture
def finished_runs(edutune_home):
    store = RunStore(edutune_home)
    for rate in (1e-3, 1e-2):
        config = TrainConfig.for_task(False, epochs=2, learning_rate=rate)
        record = create_run(store, make_gradebook(80), ColumnMapping(target="final", problem=REGRESSION), config,
                            data_name="g", name=f"lr {rate:g}")
        execute_run(store, record.run_id)
    return store


def open_compare_page(lang: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    return at


@needs_browser
def test_compare_page_offers_png_and_svg(finished_runs):
    at = open_compare_page("en")
    labels = [button.proto.label for button in at.get("download_button")]
    assert "Download the chart (PNG)" in labels
    assert "Download the chart (SVG)" in labels


def test_compare_page_explains_missing_browser(finished_runs, monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    at = open_compare_page("zh")
    assert any("Kaleido 需要 Chrome 或 Chromium" in info.value for info in at.info)
    labels = [button.proto.label for button in at.get("download_button")]
    assert not any("PNG" in label or "SVG" in label for label in labels)
