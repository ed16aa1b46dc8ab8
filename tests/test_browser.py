"""The teacher's journey in headless Chromium against a real server, in Chinese and in English.

Needs Debian's ``chromium`` package and the ``playwright`` Python package, which
``.ci/run`` installs. Every step saves a screenshot to ``test-artifacts/``; a failing
step names itself and shows the start of the page's text.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_for_server

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SAMPLES = ROOT / "sample_data"


# Servers and browsers


@contextlib.contextmanager
def launch_server(home: Path, environment: dict[str, str] | None = None, wrapper=None):
    """Start `streamlit run app.py` on a free loopback port with ``home`` as EDUTUNE_HOME; stop it on exit.

    Args:
        home: The data folder; the server log goes next to it.
        environment: Variables to add to this process's environment.
        wrapper: A function that turns the command into the one to run, for example to
            start it inside a mount namespace. It must ``exec`` the command, so that the
            process is the server.

    Yields:
        The base URL and the process, which a test may kill and start again on the same home.
    """
    port = free_port()
    log = open(home.parent / f"server-{port}.log", "a", encoding="utf-8")  # noqa: SIM115 - closed below
    merged = {**os.environ, "EDUTUNE_HOME": str(home), "HF_HUB_OFFLINE": "1", **(environment or {})}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    process = subprocess.Popen(wrapper(command) if wrapper else command,
                               cwd=ROOT, env=merged, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_started(base, process, log.name)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        log.close()


def wait_for_started(base: str, process: subprocess.Popen, log_path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            import urllib.request

            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=5) as response:
                if response.status == 200:
                    return
        assert process.poll() is None, Path(log_path).read_text(encoding="utf-8")[-3000:]
        assert time.monotonic() < deadline, f"server did not start within {timeout} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def chromium():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(server, chromium):
    base, process = server
    wait_for_server(base, process)
    yield base, chromium


def open_page(browser_or_context, url: str, locale: str | None = None):
    """Open ``url`` in a new page; a browser gets a new context (a new visitor) in ``locale``."""
    if locale is not None:
        browser_or_context = browser_or_context.new_context(locale=locale, viewport={"width": 1300, "height": 900},
                                                            accept_downloads=True)
    page = browser_or_context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    return page


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with contextlib.suppress(playwright.Error):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def screen_text(page) -> str:
    try:
        return page.inner_text("body")[:2000]
    except playwright.Error as error:
        return f"(page text not readable: {error})"


class Steps:
    """Named steps of one journey: a screenshot after each, the step name and screen on failure."""

    def __init__(self, page, prefix: str) -> None:
        self.page = page
        self.prefix = prefix
        self.count = 0
        for old in ARTIFACTS.glob(f"{prefix}_*.png"):
            old.unlink()

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.count += 1
        label = f"{self.prefix}_{self.count:02d}_{name}"
        started = time.monotonic()
        try:
            yield
        except Exception as error:
            screenshot(self.page, f"{label}_FAILED")
            raise AssertionError(f"step {label!r} failed: {error}\n--- screen ---\n{screen_text(self.page)}") from error
        screenshot(self.page, label)
        print(f"{label}: {time.monotonic() - started:.1f} s")


# Reading and driving the page


def loss_points(page) -> int:
    """Count the points of the first chart on the page, the loss curves (0 while none is drawn)."""
    return page.evaluate("""() => {
        const plot = document.querySelector('.js-plotly-plot');
        if (!plot || !plot._fullData) return 0;
        return plot._fullData.reduce((total, trace) => total + (trace._length || 0), 0);
    }""")


def wait_until(condition, description: str, timeout: float = 90.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {description}")


def wait_for_more_points(page, than: int, timeout: float = 90.0) -> int:
    return wait_until(lambda: (count := loss_points(page)) > than and count, f"more than {than} loss points", timeout)


def settle(page, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """Wait until the app has run no script for ``quiet`` seconds, so that no rerun overwrites the next input."""
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        if page.locator("[data-testid=stStatusWidget]").count():
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= quiet:
            return
        time.sleep(0.2)
    raise AssertionError(f"the app kept running scripts for {timeout:.0f} s")


def set_number(page, label: str, value: int) -> None:
    """Type ``value`` into a number field and check that it is still there once the page has settled."""
    box = page.get_by_role("spinbutton", name=label, exact=True)
    for _ in range(3):
        settle(page)
        box.fill(str(value))
        box.press("Enter")
        settle(page)
        if box.input_value() == str(value):
            return
    raise AssertionError(f"{label} shows {box.input_value()} after typing {value} three times")


def choose_option(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` with its Open button, as a mouse user does."""
    box = page.get_by_role("combobox", name=label, exact=True)
    item = page.get_by_role("option", name=option, exact=True)
    for _ in range(5):
        box.locator("xpath=following-sibling::button").click()
        try:
            item.click(timeout=5_000)
        except playwright.TimeoutError:
            # A rerun that was still under way redrew the box and closed its list.
            continue
        wait_until(lambda: box.input_value() == option, f"{label} to show {option}", timeout=30)
        return
    raise AssertionError(f"the list of {label} did not offer {option}")


def status_line(page, run_name: str, status: str):
    """The run header on the Train page, such as ``essays_zh.csv · 得分 · 已完成``."""
    return page.get_by_text(f"{run_name} · {status}", exact=True)


def upload(page, file_name: str, file_label: str, next_link: str) -> None:
    """Upload a sample file on the Data page and wait until the page has read it and offers the next step.

    The Data page first shows another file (a sample or an earlier upload) with its own
    next-step link. So the test waits for the file box to name the upload and for the
    page to settle before it looks for the link.
    """
    box = page.get_by_role("combobox", name=file_label, exact=True)
    box.wait_for()
    # A file set while the first script run is still drawing the page can be dropped by
    # the browser's uploader, so the test waits for a quiet page before it uploads.
    settle(page)
    page.locator("input[type=file]").first.set_input_files(str(SAMPLES / file_name))
    wait_until(lambda: box.count() == 1 and box.input_value() == file_name, f"the Data page to read {file_name}")
    settle(page)
    page.get_by_role("link", name=next_link).wait_for()


def stop_run(page, run_name: str, stop_label: str, stopped_status: str) -> None:
    """Press Stop and wait until the page shows the stopped run without the Stop button."""
    page.get_by_role("button", name=stop_label, exact=True).click()
    status_line(page, run_name, stopped_status).wait_for(timeout=90_000)
    page.get_by_role("button", name=stop_label, exact=True).wait_for(state="detached")
    settle(page)


def check_predictions_csv(path: Path, rows: int, column: str) -> None:
    content = path.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf"), "the CSV has no UTF-8 byte-order mark, so Excel misreads it"
    lines = content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == rows + 1
    assert column in lines[0].split(",")


def check_export(path: Path) -> None:
    names = zipfile.ZipFile(io.BytesIO(path.read_bytes())).namelist()
    assert any(name.endswith("/model/model.safetensors") for name in names), names
    assert any(name.endswith("/model/edutune.json") for name in names), names
    assert not [name for name in names if "checkpoint" in name or name.endswith((".parquet", ".pt", ".bin"))]


# Journeys


def test_cold_start_on_page_url_uses_app_navigation(browser_page):
    """A tab reopened on /data after a restart still gets the translated menu and the language switch."""
    base, browser = browser_page
    page = open_page(browser, f"{base}/data", "zh-CN")
    page.get_by_role("heading", name="数据", exact=True).wait_for()
    sidebar = page.locator("[data-testid=stSidebar]")
    sidebar.get_by_text("语言 / Language").wait_for()
    screenshot(page, "cold_start_data_zh")
    for title in ("首页", "训练", "结果", "使用模型", "历史记录"):
        assert sidebar.get_by_text(title, exact=True).count() == 1, title
    assert page.get_by_text("Page not found").count() == 0
    page.context.close()


def test_essay_journey_in_chinese(browser_page, tiny_text_model, tmp_path):
    base, browser = browser_page
    page = open_page(browser, f"{base}/data", "zh-CN")
    step = Steps(page, "journey_zh")
    run_name = "essays_zh.csv · 得分"

    with step("upload"):
        page.get_by_role("heading", name="数据", exact=True).wait_for()
        upload(page, "essays_zh.csv", "文件", "下一步：训练")
        page.get_by_text("准备就绪：作文评分，共 100 行。").wait_for()

    with step("map_columns"):
        choose_option(page, "文本列", "作文")
        choose_option(page, "要预测的列", "得分")
        page.get_by_text("准备就绪：作文评分，共 100 行。").wait_for()
        page.get_by_role("link", name="下一步：训练").wait_for()

    with step("settings"):
        page.get_by_role("link", name="下一步：训练").click()
        page.get_by_role("heading", name="训练", exact=True).wait_for()
        page.get_by_text("本地文件夹", exact=True).click()
        folder = page.get_by_role("textbox", name="模型文件夹")
        folder.fill(str(tiny_text_model))
        folder.press("Enter")
        # Far more epochs than the test waits for: the teacher stops, resumes and stops
        # again, so the test takes the same few steps on a fast or a busy machine.
        set_number(page, "训练轮数（epochs）", 1000)
        set_number(page, "批大小（batch size）", 8)
        set_number(page, "最大长度（token）", 32)
        page.get_by_text("高级设置").click()
        # One held-out split: cross-validation trains five models and keeps no checkpoint to resume.
        choose_option(page, "交叉验证折数", "-")

    with step("start_training"):
        page.get_by_role("button", name="开始训练").click()
        status_line(page, run_name, "训练中").wait_for()
        first = wait_for_more_points(page, 0)

    with step("live_chart_gains_points"):
        wait_for_more_points(page, first)

    with step("stop"):
        stop_run(page, run_name, "停止", "已停止")
        stopped_points = loss_points(page)

    with step("resume"):
        page.get_by_role("button", name="继续训练").click()
        status_line(page, run_name, "训练中").wait_for(timeout=30_000)
        wait_for_more_points(page, stopped_points)

    with step("stop_again"):
        stop_run(page, run_name, "停止", "已停止")

    with step("evaluation"):
        page.get_by_role("link", name="查看结果").click()
        page.get_by_role("heading", name="结果", exact=True).wait_for()
        page.get_by_text("QWK").first.wait_for()

    with step("predict_one"):
        page.get_by_role("link", name="使用这个模型").click()
        page.get_by_role("heading", name="使用模型", exact=True).wait_for()
        page.get_by_role("textbox", name="粘贴文本（作文）").fill("我认为读书很重要。因为读书可以让我们学到知识，而且能开阔眼界。")
        page.get_by_role("button", name="预测", exact=True).click()
        page.get_by_text("预测结果：").first.wait_for()

    with step("batch_predictions"):
        page.locator("input[type=file]").first.set_input_files(str(SAMPLES / "essays_zh.csv"))
        with page.expect_download() as download:
            page.get_by_role("button", name="下载 CSV（可用 Excel 打开）").click()
        saved = tmp_path / "predictions.csv"
        download.value.save_as(saved)
        check_predictions_csv(saved, rows=100, column="预测结果")

    with step("export"):
        page.locator("[data-testid=stSidebar]").get_by_text("历史记录", exact=True).click()
        page.get_by_role("heading", name="历史记录", exact=True).wait_for()
        with page.expect_download() as download:
            page.get_by_role("button", name="导出（zip）").click()
        saved = tmp_path / "export.zip"
        download.value.save_as(saved)
        check_export(saved)
    page.context.close()


def test_gradebook_journey_in_english(browser_page, tmp_path):
    base, browser = browser_page
    page = open_page(browser, f"{base}/data", "en-US")
    step = Steps(page, "journey_en")
    run_name = "gradebook_en.csv · final_score"

    with step("upload"):
        page.get_by_role("heading", name="Data", exact=True).wait_for()
        upload(page, "gradebook_en.csv", "File", "Continue to training")
        page.get_by_text("Ready: grade / at-risk prediction from table columns on 300 rows.").wait_for()

    with step("map_columns"):
        choose_option(page, "Column to predict", "final_score")
        page.get_by_text("Turn the grade into pass / fail").first.click()
        page.get_by_text("With a pass mark the task is classification").wait_for()

    with step("settings"):
        page.get_by_role("link", name="Continue to training").click()
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        set_number(page, "Epochs", 1000)
        page.get_by_text("Advanced settings").click()
        # One held-out split: cross-validation trains five models and keeps no checkpoint to resume.
        choose_option(page, "Cross-validation folds", "-")

    with step("start_training"):
        page.get_by_role("button", name="Start training").click()
        status_line(page, run_name, "running").wait_for()
        first = wait_for_more_points(page, 0)

    with step("live_chart_gains_points"):
        wait_for_more_points(page, first)

    with step("settings_kept_after_visiting_results"):
        # The live chart's fragment keeps running while the page changes, which once
        # dropped the settings back to each field's minimum.
        sidebar = page.locator("[data-testid=stSidebar]")
        sidebar.get_by_text("Results", exact=True).click()
        page.get_by_role("heading", name="Results", exact=True).wait_for()
        settle(page)
        sidebar.get_by_text("Train", exact=True).click()
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        settle(page)
        assert page.get_by_role("spinbutton", name="Epochs", exact=True).input_value() == "1000"
        assert page.get_by_role("spinbutton", name="Learning rate", exact=True).input_value() == "1.0e-3"
        status_line(page, run_name, "running").wait_for()

    with step("stop"):
        stop_run(page, run_name, "Stop", "stopped")
        stopped_points = loss_points(page)

    with step("resume"):
        page.get_by_role("button", name="Resume").click()
        status_line(page, run_name, "running").wait_for(timeout=30_000)
        wait_for_more_points(page, stopped_points)

    with step("stop_again"):
        stop_run(page, run_name, "Stop", "stopped")
        page.reload()
        status_line(page, run_name, "stopped").wait_for()

    with step("evaluation"):
        page.get_by_role("link", name="See the results").click()
        page.get_by_role("heading", name="Results", exact=True).wait_for()
        page.get_by_text("macro-F1").first.wait_for()

    with step("predict_one"):
        page.get_by_role("link", name="Use this model").click()
        page.get_by_role("heading", name="Use the model", exact=True).wait_for()
        page.get_by_role("button", name="Predict", exact=True).click()
        page.get_by_text("Prediction:").wait_for()

    with step("batch_predictions"):
        page.locator("input[type=file]").first.set_input_files(str(SAMPLES / "gradebook_en.csv"))
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV (opens in Excel)").click()
        saved = tmp_path / "predictions.csv"
        download.value.save_as(saved)
        check_predictions_csv(saved, rows=300, column="prediction")

    with step("export"):
        page.locator("[data-testid=stSidebar]").get_by_text("History", exact=True).click()
        page.get_by_role("heading", name="History", exact=True).wait_for()
        with page.expect_download() as download:
            page.get_by_role("button", name="Export (zip)").click()
        saved = tmp_path / "export.zip"
        download.value.save_as(saved)
        check_export(saved)
    page.context.close()


def test_run_survives_refresh_second_tab_and_return(browser_page):
    """A refresh, a second tab and a closed tab all find the running run with its whole curve."""
    base, browser = browser_page
    page = open_page(browser, f"{base}/data", "zh-CN")
    context = page.context
    step = Steps(page, "tabs_zh")
    run_name = "gradebook_zh.csv · 期末成绩"

    with step("upload_and_train"):
        page.get_by_role("heading", name="数据", exact=True).wait_for()
        upload(page, "gradebook_zh.csv", "文件", "下一步：训练")
        page.get_by_role("link", name="下一步：训练").click()
        page.get_by_role("heading", name="训练", exact=True).wait_for()
        set_number(page, "训练轮数（epochs）", 1000)
        page.get_by_text("高级设置").click()
        choose_option(page, "交叉验证折数", "-")
        page.get_by_role("button", name="开始训练").click()
        status_line(page, run_name, "训练中").wait_for()
        before = wait_for_more_points(page, 0)

    with step("refresh"):
        page.reload()
        status_line(page, run_name, "训练中").wait_for()
        shown = wait_for_more_points(page, before - 1)
        wait_for_more_points(page, shown)

    with step("second_tab"):
        second = open_page(context, f"{base}/train")
        step.page = second
        status_line(second, run_name, "训练中").wait_for()
        shown = wait_for_more_points(second, loss_points(page) - 1)
        wait_for_more_points(second, shown)

    with step("close_tabs_and_return"):
        last_seen = max(loss_points(page), loss_points(second))
        page.close()
        second.close()
        time.sleep(2)
        returned = open_page(context, base)
        step.page = returned
        returned.locator("[data-testid=stSidebar]").get_by_text("训练", exact=True).click()
        status_line(returned, run_name, "训练中").wait_for()
        wait_for_more_points(returned, last_seen)

    with step("history_lists_run"):
        returned.locator("[data-testid=stSidebar]").get_by_text("历史记录", exact=True).click()
        returned.get_by_role("heading", name="历史记录", exact=True).wait_for()
        picker = returned.get_by_role("combobox", name="训练记录")
        wait_until(lambda: picker.input_value().startswith(f"{run_name} · 训练中"), "the running run in the history")
        # The chart draws a moment after the run picker shows the run.
        wait_until(lambda: loss_points(returned) > 0, "the history's loss chart to show points")

    with step("stop"):
        returned.locator("[data-testid=stSidebar]").get_by_text("训练", exact=True).click()
        stop_run(returned, run_name, "停止", "已停止")
    context.close()


def test_password_gate_in_browser(chromium, tmp_path):
    """With EDUTUNE_PASSWORD set, every page asks for it first; failures are logged without the password."""
    home = tmp_path / "home"
    home.mkdir()
    with launch_server(home, {"EDUTUNE_PASSWORD": "staffroom-7421"}) as (base, process):
        page = open_page(chromium, f"{base}/history", "en-US")
        step = Steps(page, "login_en")
        sidebar = page.locator("[data-testid=stSidebar]")

        with step("login_form"):
            page.get_by_role("heading", name="Sign in to EduTune", exact=True).wait_for()
            assert sidebar.get_by_text("History", exact=True).count() == 0
            assert page.get_by_role("heading", name="History", exact=True).count() == 0

        with step("wrong_password"):
            page.get_by_label("Password", exact=True).fill("staffroom-0000")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("The password is wrong. Check it and try again.").wait_for()

        with step("right_password"):
            page.get_by_label("Password", exact=True).fill("staffroom-7421")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="History", exact=True).wait_for()
            sidebar.get_by_text("Data", exact=True).click()
            page.get_by_role("heading", name="Data", exact=True).wait_for()

        with step("sign_out"):
            page.get_by_role("button", name="Sign out").click()
            page.get_by_role("heading", name="Sign in to EduTune", exact=True).wait_for()
        page.context.close()
        log = next(tmp_path.glob("server-*.log")).read_text(encoding="utf-8")
    assert "failed login: 1 in this session, 1 since the server started" in log
    assert "staffroom" not in log
