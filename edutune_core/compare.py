"""Compare runs: aligned curves, the settings that differ, and metrics side by side."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from edutune_core.i18n import EduTuneError
from edutune_core.metrics import PRIMARY_METRIC, SCALAR_METRICS, metric_family
from edutune_core.progress import curves
from edutune_core.runstore import RunRecord, RunStore

logger = logging.getLogger(__name__)

ALIGNMENTS = ("step", "epoch", "seconds")
IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
# Browser program names that Debian and Ubuntu packages install on the PATH.
SYSTEM_CHROMIUM = ("chromium", "chromium-browser")
# Seconds Kaleido waits for the browser to draw one image.
IMAGE_TIMEOUT = 60
DEFAULT_IMAGE_WIDTH = 1000
DEFAULT_IMAGE_HEIGHT = 450


def aligned_curves(store: RunStore, records: list[RunRecord], split: str, metric: str, align: str,
                   smoothing: float = 0.0) -> pd.DataFrame:
    """Return one long table (run, x, value) of ``metric`` for every run, ready to plot.

    Args:
        split: ``"train"`` (one point per step) or ``"validation"`` (one per epoch).
        align: ``"step"``, ``"epoch"`` or ``"seconds"`` since the run's first point.
        smoothing: Weight of the exponential moving average, 0 (off) to below 1.
    """
    tables = []
    for record in records:
        train, validation = curves(store.points(record.run_id))
        table = train if split == "train" else validation
        if metric not in table or table.empty:
            continue
        values = table[metric].astype(float)
        if smoothing > 0:
            values = values.ewm(alpha=1 - smoothing).mean()
        x = table["wall_time"] - table["wall_time"].iloc[0] if align == "seconds" else table[align]
        tables.append(pd.DataFrame({"run": record.name, "run_id": record.run_id, "x": x.to_numpy(),
                                    "value": values.to_numpy()}))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["run", "run_id", "x", "value"])


def _flatten(settings: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def settings_table(records: list[RunRecord]) -> tuple[pd.DataFrame, list[str]]:
    """Return every setting of the runs (one column per run) and the names of those that differ."""
    flat = {record.run_id: _flatten(record.config) for record in records}
    names = sorted({name for settings in flat.values() for name in settings})
    table = pd.DataFrame({record.name + f" ({record.run_id[-6:]})": [str(flat[record.run_id].get(name, "-"))
                                                                    for name in names] for record in records},
                         index=names)
    differing = [name for name in names if table.loc[name].nunique() > 1]
    return table, differing


def metrics_table(records: list[RunRecord]) -> pd.DataFrame:
    """Final (best-epoch) metrics of each run, ranked by the primary validation metric."""
    rows = []
    for record in records:
        metrics = record.metrics or {}
        family = metric_family(record.summary.get("problem", "classification"), record.summary.get("score_points"))
        primary, higher_is_better = PRIMARY_METRIC[family]
        value = metrics.get(primary)
        rank_key = None
        if value is not None:
            rank_key = -value if higher_is_better else value
        row = {"run": record.name, "run_id": record.run_id, "status": record.status, "primary": primary,
               "rank_key": rank_key}
        row.update({name: metrics[name] for name in SCALAR_METRICS if name in metrics})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values("rank_key", na_position="last").drop(columns="rank_key").reset_index(drop=True)


def points_csv(store: RunStore, records: list[RunRecord]) -> bytes:
    """Return all metric points of the runs as CSV, in UTF-8 with a BOM so that Excel reads it."""
    frames = [pd.DataFrame(store.points(record.run_id)).assign(run_id=record.run_id, run=record.name)
              for record in records]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return table.to_csv(index=False).encode("utf-8-sig")


def tensorboard_zip(store: RunStore, records: list[RunRecord]) -> bytes:
    """Write each run's points as TensorBoard event files, one folder per run, and zip them.

    Train points are tagged ``train/<name>`` by step, validation points
    ``validation/<name>`` by the step at which they were evaluated.
    """
    import io
    import tempfile
    import zipfile
    from pathlib import Path

    from torch.utils.tensorboard import SummaryWriter

    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            run_folder = Path(folder) / record.run_id
            writer = SummaryWriter(log_dir=str(run_folder))
            for point in store.points(record.run_id):
                writer.add_scalar(f"{point['split']}/{point['name']}", point["value"], point["step"],
                                  walltime=point["wall_time"])
            writer.close()
            for path in run_folder.rglob("*"):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


class ChartImageError(EduTuneError):
    """A chart that cannot be written as an image (no browser, or the browser failed)."""


def chromium_path() -> str | None:
    """Return the Chrome or Chromium program that Kaleido drives, or None when there is none.

    The search looks at ``$BROWSER_PATH``, then Chromium on the PATH (Debian's
    ``/usr/bin/chromium``), then choreographer's own search: a copy that
    ``kaleido_get_chrome`` downloaded earlier, then Chrome or Chromium on the PATH or in
    their usual folders. When ``BROWSER_PATH`` is unset and the system Chromium is
    found, ``BROWSER_PATH`` is set to it, which plotly's own ``to_image`` also reads.
    A ``BROWSER_PATH`` that names no executable file counts as no browser. Nothing is
    downloaded.
    """
    configured = os.environ.get("BROWSER_PATH")
    if configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    for name in SYSTEM_CHROMIUM:
        found = shutil.which(name)
        if found:
            os.environ.setdefault("BROWSER_PATH", found)
            return found
    from choreographer.browsers.chromium import Chromium

    return Chromium.find_browser(skip_local=False)


def figure_image(figure, fmt: str, *, width: int | None = None, height: int | None = None,
                 scale: float = 1.0) -> bytes:
    """Draw a plotly figure as a PNG or SVG image with Kaleido and return the file's bytes.

    The page loads plotly.js from the plotly package and no MathJax, so the browser
    fetches nothing from the network. The size is the figure's own, else
    ``DEFAULT_IMAGE_WIDTH`` by ``DEFAULT_IMAGE_HEIGHT`` pixels (times ``scale`` for PNG).

    Raises:
        ValueError: ``fmt`` is not a key of ``IMAGE_TYPES``.
        ChartImageError: ``compare.image_no_browser`` when no Chrome or Chromium is
            installed, ``compare.image_failed`` when the browser fails or times out.
    """
    if fmt not in IMAGE_TYPES:
        raise ValueError(f"unsupported image format {fmt!r}; expected one of {sorted(IMAGE_TYPES)}")
    browser = chromium_path()
    if browser is None:
        raise ChartImageError("compare.image_no_browser")
    import kaleido
    import plotly
    from choreographer.browsers.chromium import ChromeNotFoundError

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not plotly_js.is_file():
        # Without it Kaleido would load plotly.js from a CDN.
        raise ChartImageError("compare.image_failed", error=f"{plotly_js} is missing")
    options = {"format": fmt, "width": width or figure.layout.width or DEFAULT_IMAGE_WIDTH,
               "height": height or figure.layout.height or DEFAULT_IMAGE_HEIGHT, "scale": scale}
    settings = {"path": browser, "mathjax": False, "plotlyjs": str(plotly_js), "timeout": IMAGE_TIMEOUT}
    try:
        image = kaleido.calc_fig_sync(figure.to_dict(), opts=options, kopts=settings)
    except ChromeNotFoundError:
        raise ChartImageError("compare.image_no_browser") from None
    except Exception as error:  # noqa: BLE001 - Kaleido and choreographer raise many unrelated types
        logger.exception("drawing a %s chart image with %s failed", fmt, browser)
        raise ChartImageError("compare.image_failed", error=f"{type(error).__name__}: {error}"[:300]) from error
    return image if isinstance(image, bytes) else str(image).encode("utf-8")
