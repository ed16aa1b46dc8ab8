"""The teacher's journey in headless Chromium against a real server.

Needs Debian's ``chromium`` package and the ``playwright`` Python package, which
``.ci/run`` installs. Screenshots of each step go to ``test-artifacts/``.
"""

import shutil
from pathlib import Path

import pytest

from conftest import ROOT, wait_for_server

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def browser_page(server):
    base, process = server
    wait_for_server(base, process)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield base, browser
        browser.close()


def open_page(browser, url: str, locale: str):
    context = browser.new_context(locale=locale, viewport={"width": 1300, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    return page


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_cold_start_on_page_url_uses_app_navigation(browser_page):
    """A tab reopened on /data after a restart still gets the translated menu and the language switch."""
    base, browser = browser_page
    page = open_page(browser, f"{base}/data", "zh-CN")
    page.get_by_role("heading", name="数据").wait_for()
    sidebar = page.locator("[data-testid=stSidebar]")
    sidebar.get_by_text("语言 / Language").wait_for()
    screenshot(page, "cold_start_data_zh")
    for title in ("首页", "训练", "结果", "使用模型", "历史记录"):
        assert sidebar.get_by_text(title, exact=True).count() == 1, title
    assert page.get_by_text("Page not found").count() == 0


def test_gradebook_journey_in_english(browser_page, tmp_path):
    base, browser = browser_page
    page = open_page(browser, f"{base}/data", "en-US")
    page.get_by_role("heading", name="Data").wait_for()

    # Upload a gradebook and map it: predict pass/fail from the other columns.
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "sample_data" / "gradebook_en.csv"))
    page.get_by_text("Ready: grade / at-risk prediction from table columns on 300 rows.").wait_for()
    page.get_by_text("Turn the grade into pass / fail").first.click()
    page.get_by_text("With a pass mark the task is classification").wait_for()
    screenshot(page, "journey_en_1_data")

    page.get_by_role("link", name="Continue to training").click()
    page.get_by_role("heading", name="Train").wait_for()
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("5")
    epochs.press("Enter")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("completed", exact=False).first.wait_for(timeout=120_000)
    screenshot(page, "journey_en_2_trained")
    assert page.locator(".js-plotly-plot").count() >= 2

    # A refresh shows the same run from the store.
    page.reload()
    page.get_by_text("completed", exact=False).first.wait_for()

    page.get_by_role("link", name="See the results").click()
    page.get_by_role("heading", name="Results").wait_for()
    page.get_by_text("macro-F1").first.wait_for()
    screenshot(page, "journey_en_3_results")

    page.get_by_role("link", name="Use this model").click()
    page.get_by_role("heading", name="Use the model").wait_for()
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_text("Prediction:").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(ROOT / "sample_data" / "gradebook_en.csv"))
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV (opens in Excel)").click()
    saved = tmp_path / "predictions.csv"
    download.value.save_as(saved)
    content = saved.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")
    assert len(content.decode("utf-8-sig").strip().splitlines()) == 301
    screenshot(page, "journey_en_4_predict")
