"""Benchmarks of EduTune's training and prediction against the usual ways, measured side by side.

Run by hand, never as a test: ``python bench/run.py [--quick] [--asap-dir DIR]``. Every
comparison runs in this one process, on the same essays, model, batch size, max length
and number of threads, and the script prints a table of ratios and a JSON line.

1. Training throughput of EduTune's job (started through the job manager while a second
   thread polls the curve once a second, as the Train page does) against a minimal
   hand-written PyTorch loop and ``transformers.Trainer`` with default arguments.
2. Prediction throughput of ``Predictor`` against ``transformers.pipeline``.
3. Time from Start to the first loss point in the run store, cold and warm.
4. Peak resident memory during training, and its growth over 1,000 progress refreshes.
5. QWK of EduTune's model and the Trainer's model after the same number of steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edutune_core.config import TrainConfig  # noqa: E402
from edutune_core.jobs import JobManager  # noqa: E402
from edutune_core.memory import estimate_text_training  # noqa: E402
from edutune_core.metrics import round_to_points, score_metrics  # noqa: E402
from edutune_core.models import bundled_model_path  # noqa: E402
from edutune_core.predict import Predictor  # noqa: E402
from edutune_core.progress import curves, progress_of  # noqa: E402
from edutune_core.runner import create_run  # noqa: E402
from edutune_core.runstore import COMPLETED, RunStore  # noqa: E402
from edutune_core.tasks import REGRESSION, ColumnMapping  # noqa: E402

MAPPING = ColumnMapping(target="domain1_score", text_column="essay", problem=REGRESSION)


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Samples resident memory every 50 ms in a thread and keeps the maximum."""

    def __init__(self) -> None:
        self.peak = resident_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, resident_bytes())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def load_prompt(asap_dir: Path, prompt: int, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train rows from parts 1-3 and validation rows from part 4 of one prompt."""
    parts = [pd.read_csv(asap_dir / f"asap_part{i}.tsv", sep="\t", encoding="utf-8", encoding_errors="replace")
             for i in range(1, 5)]
    train = pd.concat(parts[:3]).query("essay_set == @prompt").head(rows)
    validation = parts[3].query("essay_set == @prompt").head(max(64, rows // 4))
    return train[["essay", "domain1_score"]].reset_index(drop=True), validation[["essay", "domain1_score"]]


def refresh(store: RunStore, run_id: str) -> float:
    """Do the reading of one progress-fragment refresh and return its seconds."""
    began = time.perf_counter()
    record = store.get_run(run_id)
    train, _validation = curves(store.points(run_id))
    progress_of(record, train, time.time())
    return time.perf_counter() - began


def edutune_training(store: RunStore, manager: JobManager, train, validation, config) -> dict:
    """Start a run the way the Train page does and poll its curve once a second while it trains."""
    started = time.perf_counter()
    record = create_run(store, train, MAPPING, config, data_name="bench", validation_frame=validation)
    manager.submit(record.run_id)
    first_point, refreshes = None, []
    with PeakMemory() as memory:
        while True:
            refreshes.append(refresh(store, record.run_id))
            record = store.get_run(record.run_id)
            points = store.points(record.run_id)
            if first_point is None and points:
                first_point = time.perf_counter() - started
            if not record.is_active:
                break
            time.sleep(1.0)
    assert record.status == COMPLETED, record.error
    train_points = [point for point in points if point["split"] == "train" and point["name"] == "loss"]
    seconds = train_points[-1]["wall_time"] - train_points[0]["wall_time"]
    return {"seconds_per_step": seconds / (len(train_points) - 1), "first_point_seconds": first_point,
            "peak_rss": memory.peak, "run": record, "wall_seconds": time.perf_counter() - started,
            "refresh_seconds": float(np.median(refreshes))}


def hand_loop(train, config, precision: str) -> dict:
    """Train with a minimal PyTorch loop: same model, optimizer, batch size, max length and precision.

    Batches are drawn in a random order and padded to their longest essay. Like EduTune
    and ``Trainer``, it trains with dropout on and clips gradients to norm 1.0.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(bundled_model_path(), num_labels=1)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    targets = torch.tensor(train["domain1_score"].to_numpy(), dtype=torch.float32)
    targets = (targets - targets.mean()) / targets.std()
    texts = train["essay"].tolist()
    order = np.random.default_rng(config.seed).permutation(len(texts))
    times = []
    for start in range(0, len(order), config.batch_size):
        rows = order[start:start + config.batch_size]
        began = time.perf_counter()
        batch = tokenizer([texts[i] for i in rows], truncation=True, max_length=config.max_length, padding=True,
                          return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            outputs = model(**batch).logits.float().squeeze(-1)
        loss = torch.nn.functional.mse_loss(outputs, targets[rows])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - began)
    return {"seconds_per_step": float(np.mean(times[1:]))}


def hf_trainer(train, validation, config, score_points) -> dict:
    """``transformers.Trainer`` with default arguments apart from the shared hyperparameters."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(bundled_model_path(), num_labels=1)
    mean, scale = train["domain1_score"].mean(), train["domain1_score"].std()
    encoded = tokenizer(train["essay"].tolist(), truncation=True, max_length=config.max_length)
    labels = ((train["domain1_score"] - mean) / scale).astype("float32").tolist()
    dataset = [{"input_ids": ids, "attention_mask": mask, "labels": label}
               for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels)]
    with tempfile.TemporaryDirectory() as output:
        arguments = TrainingArguments(output_dir=output, per_device_train_batch_size=config.batch_size,
                                      learning_rate=1e-4, num_train_epochs=config.epochs, report_to=[],
                                      save_strategy="no", seed=config.seed, disable_tqdm=True)
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset, processing_class=tokenizer)
        result = trainer.train()
    steps = result.global_step
    model.eval()
    with torch.inference_mode():
        predictions = []
        for start in range(0, len(validation), 32):
            batch = tokenizer(validation["essay"].iloc[start:start + 32].tolist(), truncation=True,
                              max_length=config.max_length, padding=True, return_tensors="pt")
            predictions.append(model(**batch).logits.squeeze(-1).numpy() * scale + mean)
    qwk = score_metrics(validation["domain1_score"].to_numpy(),
                        round_to_points(np.concatenate(predictions), score_points))["qwk"]
    return {"seconds_per_step": result.metrics["train_runtime"] / steps, "qwk": qwk,
            "train_seconds": result.metrics["train_runtime"]}


def inference(run_dir: Path, texts: list[str], max_length: int) -> dict:
    from transformers import pipeline

    predictor = Predictor(run_dir)
    frame = pd.DataFrame({"essay": texts})
    began = time.perf_counter()
    predictor.predict_frame(frame)
    edutune = len(texts) / (time.perf_counter() - began)
    classifier = pipeline("text-classification", model=str(run_dir / "model"), device="cpu")
    began = time.perf_counter()
    classifier(texts, truncation=True, max_length=max_length, function_to_apply="none")
    return {"edutune_essays_per_second": edutune, "pipeline_essays_per_second": len(texts) / (time.perf_counter() - began)}


def refresh_growth(store: RunStore, run_id: str, refreshes: int = 1000) -> tuple[int, float]:
    """Resident-memory growth over ``refreshes`` progress-fragment refreshes, and their median seconds."""
    before = resident_bytes()
    seconds = [refresh(store, run_id) for _ in range(refreshes)]
    return resident_bytes() - before, float(np.median(seconds))


def memory_run(asap_dir: Path, rows: int) -> None:
    """Train one run at batch size 16 and max length 512 on long essays and print its peak memory.

    Runs in a fresh process (``--memory-run``), so the peak is that of a training run
    alone, as in the app's server, and not of the models the other measurements load.
    """
    config = TrainConfig(epochs=1, batch_size=16, max_length=512, seed=7)
    train, validation = load_prompt(asap_dir, 1, rows)
    with tempfile.TemporaryDirectory() as home:
        store = RunStore(home)
        manager = JobManager(store)
        result = edutune_training(store, manager, train, validation.head(16), config)
        manager.shutdown()
    estimate = estimate_text_training(config)
    # ru_maxrss is no use here: Linux keeps the parent's peak in it across fork and exec.
    print(json.dumps({"peak_rss_gib": result["peak_rss"] / 2**30,
                      "estimate_gib": estimate.needed / 2**30, "seconds_per_step": result["seconds_per_step"]}))


def measure_memory_run(asap_dir: Path, rows: int) -> dict:
    command = [sys.executable, __file__, "--memory-run", "--asap-dir", str(asap_dir), "--rows", str(rows)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure_prompt(store: RunStore, manager: JobManager, asap_dir: Path, prompt: int, rows: int,
                   config: TrainConfig, variants: dict[str, dict]) -> dict:
    train, validation = load_prompt(asap_dir, prompt, rows)
    tokens = np.mean([min(config.max_length, len(text.split()) * 1.3) for text in train["essay"]])
    ours = edutune_training(store, manager, train, validation, config)
    precision = ours["run"].summary["hardware"]["precision"]
    hand = hand_loop(train, config, precision)
    trainer = hf_trainer(train, validation, config, ours["run"].summary["score_points"])
    warm = edutune_training(store, manager, train.head(64), validation, config)
    speed = inference(ours["run"].run_dir, validation["essay"].tolist(), config.max_length)
    _, idle_refresh = refresh_growth(store, ours["run"].run_id)
    growth, _ = refresh_growth(store, ours["run"].run_id)
    variant_results = {}
    for name, change in variants.items():
        variant = edutune_training(store, manager, train, validation, dataclasses.replace(config, **change))
        variant_results[name] = {"time_ratio": variant["seconds_per_step"] / ours["seconds_per_step"],
                                 "qwk": variant["run"].metrics["qwk"]}
    return {
        "precision": precision,
        "essays_per_second": {name: config.batch_size / value["seconds_per_step"]
                              for name, value in (("edutune", ours), ("hand_loop", hand), ("trainer", trainer))},
        "tokens_per_second_edutune": config.batch_size * tokens / ours["seconds_per_step"],
        "ratio_vs_hand_loop": hand["seconds_per_step"] / ours["seconds_per_step"],
        "ratio_vs_trainer": trainer["seconds_per_step"] / ours["seconds_per_step"],
        "first_point_seconds": {"cold": ours["first_point_seconds"], "warm": warm["first_point_seconds"]},
        "peak_rss_gib": ours["peak_rss"] / 2**30,
        "qwk": {"edutune": ours["run"].metrics["qwk"], "trainer": trainer["qwk"]},
        "train_seconds": {"edutune": ours["wall_seconds"], "trainer": trainer["train_seconds"]},
        **speed,
        "refresh_growth_mib": growth / 2**20,
        "refresh_ms": {"idle": idle_refresh * 1000, "during_training": ours["refresh_seconds"] * 1000},
        "variants": variant_results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asap-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/asap")
    parser.add_argument("--quick", action="store_true", help="fewer essays; about 5 minutes on 2 cores")
    parser.add_argument("--memory-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=48, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        memory_run(args.asap_dir, args.rows)
        return
    rows = 160 if args.quick else 640
    config = TrainConfig(epochs=1, batch_size=16, max_length=256, seed=7)
    # What each setting is worth: EduTune again with one setting changed from its default.
    variants = {"no padding to a multiple of 8": {"pad_to_multiple_of": 1}}
    if not args.quick:
        variants.update({"length-grouped batches": {"group_by_length": True}, "whole batches": {"tokens_per_pass": 0},
                         "fp32": {"precision": "fp32"}})
    results = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "quick": args.quick, "rows": rows, "prompts": {}}
    with tempfile.TemporaryDirectory() as home:
        store = RunStore(home)
        manager = JobManager(store)
        for prompt in (1, 3):  # prompt 1: long essays (about 350 words); prompt 3: short ones (about 110)
            results["prompts"][prompt] = measure_prompt(store, manager, args.asap_dir, prompt, rows, config, variants)
        manager.shutdown()
    results["memory_16x512"] = measure_memory_run(args.asap_dir, 48 if args.quick else 96)
    for prompt, numbers in results["prompts"].items():
        changes = ", ".join(f"{name}: {value['time_ratio']:.2f}x the time, QWK {value['qwk']:.3f}"
                            for name, value in numbers["variants"].items())
        print(f"prompt {prompt} ({numbers['precision']}): EduTune/hand loop {numbers['ratio_vs_hand_loop']:.2f}x, "
              f"EduTune/Trainer {numbers['ratio_vs_trainer']:.2f}x, "
              f"predict/pipeline {numbers['edutune_essays_per_second'] / numbers['pipeline_essays_per_second']:.2f}x, "
              f"first point cold {numbers['first_point_seconds']['cold']:.1f} s warm "
              f"{numbers['first_point_seconds']['warm']:.1f} s, peak {numbers['peak_rss_gib']:.2f} GiB, "
              f"refresh growth {numbers['refresh_growth_mib']:.1f} MiB, refresh {numbers['refresh_ms']['idle']:.0f} ms "
              f"idle / {numbers['refresh_ms']['during_training']:.0f} ms training, QWK "
              f"{numbers['qwk']['edutune']:.3f} in {numbers['train_seconds']['edutune']:.0f} s vs "
              f"{numbers['qwk']['trainer']:.3f} in {numbers['train_seconds']['trainer']:.0f} s; {changes}")
    memory = results["memory_16x512"]
    print(f"batch 16 x 512 tokens, prompt 1: peak {memory['peak_rss_gib']:.2f} GiB "
          f"(the Train page estimates {memory['estimate_gib']:.2f} GiB)")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
