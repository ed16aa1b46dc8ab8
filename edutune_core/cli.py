"""Command line: ``python -m edutune_core train|predict|evaluate``.

Progress and log lines go to standard error. With ``--json`` the last line of standard
output is one JSON object with the run's folder and its metrics. Exit codes: 0 on
success, 1 when training itself failed, 2 on invalid input (with a one-line reason).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from edutune_core.config import DEVICES, OPTIMIZERS, PRECISIONS, SCHEDULERS, TrainConfig
from edutune_core.data import SUPPORTED_ENCODINGS, read_table_file
from edutune_core.executor import EXECUTOR_ENV, LR_SCALINGS, ClusterOptions, build_executor
from edutune_core.i18n import EduTuneError, translate
from edutune_core.metrics import SCALAR_METRICS
from edutune_core.predict import Predictor, write_xlsx
from edutune_core.runner import create_run, prepare_resume
from edutune_core.runstore import COMPLETED, STOPPED, RunStore
from edutune_core.tasks import PROBLEMS, SCORE_STEPS, ColumnMapping, propose_problem

EXIT_FAILED = 1
EXIT_INVALID = 2


class _OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser that reports invalid arguments in one line instead of the usage text."""

    def error(self, message: str):
        self.exit(EXIT_INVALID, f"error: {message}; run '{self.prog} --help' for the options\n")


PREDICTION_SUFFIXES = (".csv", ".xlsx")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(prog="python -m edutune_core",
                                 description="Fine-tune and use EduTune models without the web interface.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineErrorParser)

    train = commands.add_parser("train", help="train a model on a CSV, TSV or Excel file")
    train.add_argument("--data", required=True, type=Path,
                       help="training file; a .zip of one image folder per class trains an image classifier")
    train.add_argument("--target", required=True, help="column to predict")
    train.add_argument("--text-column", help="column with the essay or short-answer text; omit it for a table model")
    train.add_argument("--ignore-columns", default="", help="comma-separated columns to leave out")
    train.add_argument("--problem", choices=PROBLEMS, help="default: classification for labels, regression for numbers")
    train.add_argument("--pass-mark", type=float, help="turn a numeric target into pass (>= mark) / fail")
    train.add_argument("--group-columns", default="",
                       help="comma-separated columns (class, gender, first language) whose groups get their own metrics")
    train.add_argument("--student-column",
                       help="column naming the student of each row; one student's rows stay on one side of each split")
    train.add_argument("--score-min", type=float, help="lowest score of the rubric (default: lowest in the data)")
    train.add_argument("--score-max", type=float, help="highest score of the rubric (default: highest in the data)")
    train.add_argument("--score-step", type=float, choices=SCORE_STEPS,
                       help="step between rubric scores: 1, or 0.5 for half points (default: 1 for whole scores)")
    train.add_argument("--model", help="model id, local folder or the bundled all-MiniLM-L6-v2 (default)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--max-length", type=int, help="maximum text length in tokens")
    train.add_argument("--seed", type=int)
    train.add_argument("--validation-share", type=float, help="share of rows held out (default 0.2)")
    train.add_argument("--validation-data", type=Path, help="separate validation file; replaces the held-out split")
    train.add_argument("--folds", type=int, help="k-fold cross-validation instead of one held-out split")
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--scheduler", choices=SCHEDULERS, help="learning-rate decay after warm-up")
    train.add_argument("--warmup-share", type=float, help="share of the steps spent warming up (default 0.1)")
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--max-grad-norm", type=float, help="gradient clipping; 0 turns it off")
    train.add_argument("--accumulation-steps", type=int, help="batches per optimizer step")
    train.add_argument("--early-stopping-patience", type=int, help="epochs without improvement before stopping")
    train.add_argument("--class-weights", action="store_true", default=None, help="weight classes by rarity")
    train.add_argument("--freeze-embeddings", action="store_true", default=None)
    train.add_argument("--freeze-layers", type=int, help="first transformer layers to keep fixed")
    train.add_argument("--lora-rank", type=int, help="train LoRA adapters of this rank instead of the whole model")
    train.add_argument("--precision", choices=PRECISIONS,
                       help="auto (default): bf16 for text models where the processor computes it natively")
    train.add_argument("--group-by-length", action="store_true", default=None,
                       help="form text batches from essays of similar length: faster, but can cost quality")
    train.add_argument("--pad-to-multiple-of", type=int, help="pad text batches to a multiple of this many tokens")
    train.add_argument("--tokens-per-pass", type=int,
                       help="maximum tokens in one forward and backward pass (default 2048 on the CPU; 0: whole batch)")
    train.add_argument("--device", choices=DEVICES)
    train.add_argument("--output", type=Path, help="run folder (default: a new folder under $EDUTUNE_HOME/runs)")
    train.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    train.add_argument("--baselines", action="store_true",
                       help="also fit the simple baselines (TF-IDF or table models and the floor) on the same "
                            "split and report their metrics under 'baselines'")
    _add_loading_arguments(train)
    _add_executor_arguments(train)

    resume = commands.add_parser("resume", help="continue a stopped or interrupted run from its checkpoint")
    resume.add_argument("--run-id", required=True, help="id of the run, as printed by train")
    resume.add_argument("--json", action="store_true")
    # The resources stay those the run was created with: other workers would change its steps.
    _add_executor_arguments(resume, with_resources=False)

    predict = commands.add_parser("predict", help="add a prediction column to a file")
    predict.add_argument("--run", required=True, type=Path, help="run folder or exported run folder")
    predict.add_argument("--data", required=True, type=Path)
    predict.add_argument("--output", required=True, type=Path, help=".csv (UTF-8 with BOM) or .xlsx")
    _add_loading_arguments(predict)

    evaluate = commands.add_parser("evaluate", help="compute metrics of a trained model on a labelled file")
    evaluate.add_argument("--run", required=True, type=Path)
    evaluate.add_argument("--data", required=True, type=Path)
    evaluate.add_argument("--json", action="store_true")
    _add_loading_arguments(evaluate)
    return parser


def _add_loading_arguments(parser: argparse.ArgumentParser) -> None:
    loading = parser.add_argument_group("reading --data", "override what is detected, as on the Data page")
    loading.add_argument("--encoding", choices=SUPPORTED_ENCODINGS, help="text encoding of a CSV or TXT file")
    loading.add_argument("--sheet", help="sheet of an Excel workbook (default: the first sheet with a table)")
    loading.add_argument("--header-row", type=_positive_int,
                         help="row number (1 = first row) that contains the column names")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _add_executor_arguments(parser: argparse.ArgumentParser, with_resources: bool = True) -> None:
    cluster = parser.add_argument_group("cluster", "run the job on a Ray cluster (needs requirements-cluster.txt)")
    cluster.add_argument("--executor", help=f"local, auto, host:port or ray://host:port; "
                                            f"default: ${EXECUTOR_ENV}, else local")
    if not with_resources:
        return
    cluster.add_argument("--workers", type=int, help="data-parallel worker processes on the cluster (default 1)")
    cluster.add_argument("--cpus-per-worker", type=float, help="logical CPUs reserved per worker (default 1)")
    cluster.add_argument("--gpus-per-worker", type=float,
                         help="GPUs per worker (default: 1 when the device is cuda, or auto on a cluster with GPUs)")
    cluster.add_argument("--lr-scaling", choices=LR_SCALINGS,
                         help="linear (default) multiplies the learning rate by the number of workers")


def _cluster_options(args: argparse.Namespace) -> dict | None:
    """Return the cluster options given on the command line, checked, or None when none was given."""
    names = ("workers", "cpus_per_worker", "gpus_per_worker", "lr_scaling")
    values = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if not values:
        return None
    options = ClusterOptions.from_dict(values)
    options.validate()
    return options.to_dict()


def _execute(store: RunStore, run_id: str, executor, *, resume: bool = False):
    """Run a recorded run on ``executor`` with Ctrl-C as a clean stop, and return its record."""
    record = executor.run(store, run_id, _stop_on_interrupt(), resume=resume)
    detail = record.summary.get("data_parallel")
    if detail:
        print(translate("cluster.data_parallel", "en", **detail), file=sys.stderr)
    return record


def _read(path: Path, args: argparse.Namespace | None = None):
    """Read a table file, with the --encoding, --sheet and --header-row of ``args`` when given."""
    overrides = {}
    if args is not None:
        overrides = {"encoding": args.encoding, "sheet": args.sheet,
                     "header_row": None if args.header_row is None else args.header_row - 1}
    try:
        return read_table_file(path, **overrides)
    except OSError as error:
        raise EduTuneError("cli.read_failed", path=str(path), reason=error.strerror or str(error)) from error


def _image_table(args: argparse.Namespace, store: RunStore):
    """Unpack a zip of class folders under the data folder and return its (image, label) table."""
    import hashlib

    from edutune_core.images import unpack_class_folders

    data = args.data.read_bytes()
    folder = store.home / "images" / hashlib.sha256(data).hexdigest()[:16]
    frame, unreadable = unpack_class_folders(data, args.data.name, folder)
    for name in unreadable:
        print(f"skipped unreadable image: {name}", file=sys.stderr)
    return frame


def _train(args: argparse.Namespace) -> int:
    # The cluster settings are checked first, so a wrong address fails before any work.
    cluster = _cluster_options(args)
    executor = build_executor(args.executor)
    if args.data.suffix.lower() == ".zip" and args.text_column is None:
        return _train_images(args, executor, cluster)
    if args.output is not None:
        _check_output_folder(args.output)
    table = _read(args.data, args)
    frame = table.frame
    if args.target not in frame.columns:
        raise EduTuneError("data.missing_column", column=args.target, columns=", ".join(map(str, frame.columns)))
    ignore = [column.strip() for column in args.ignore_columns.split(",") if column.strip()]
    problem = args.problem or ("classification" if args.pass_mark is not None else propose_problem(frame[args.target]))
    groups = [column.strip() for column in args.group_columns.split(",") if column.strip()]
    mapping = ColumnMapping(target=args.target, text_column=args.text_column, ignore_columns=ignore,
                            problem=problem, pass_mark=args.pass_mark, group_columns=groups,
                            student_column=args.student_column, score_min=args.score_min,
                            score_max=args.score_max, score_step=args.score_step)
    names = ("model", "epochs", "batch_size", "learning_rate", "max_length", "seed", "validation_share", "folds",
             "optimizer", "scheduler", "warmup_share", "weight_decay", "max_grad_norm", "accumulation_steps",
             "early_stopping_patience", "class_weights", "freeze_embeddings", "freeze_layers", "lora_rank",
             "precision", "device", "group_by_length", "pad_to_multiple_of", "tokens_per_pass")
    settings = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.model is not None and args.text_column is None:
        raise EduTuneError("cli.model_needs_text", model=args.model)
    config = TrainConfig.for_task(args.text_column is not None, **settings)
    validation = _read(args.validation_data).frame if args.validation_data else None

    store = RunStore()
    record = create_run(store, frame, mapping, config, data_name=args.data.name,
                        validation_frame=validation, run_dir=args.output, cluster=cluster)
    print(f"run {record.run_id} in {record.run_dir}", file=sys.stderr)
    return _finish(store, _execute(store, record.run_id, executor), args.json, baselines=args.baselines)


def _check_output_folder(path: Path) -> None:
    """Reject a run folder that is a file, already contains files or cannot be created.

    Writing into a used folder would mix two runs' models, and the older run's record
    would then describe the newer model.
    """
    if path.exists() and not path.is_dir():
        raise EduTuneError("cli.output_not_folder", path=str(path))
    if path.is_dir() and any(path.iterdir()):
        raise EduTuneError("cli.output_not_empty", path=str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EduTuneError("cli.write_failed", path=str(path), reason=error.strerror or str(error)) from error


def _train_images(args: argparse.Namespace, executor, cluster: dict | None) -> int:
    if args.output is not None:
        _check_output_folder(args.output)
    store = RunStore()
    frame = _image_table(args, store)
    mapping = ColumnMapping(target="label", image_column="image", problem="classification")
    settings = {name: getattr(args, name) for name in ("model", "epochs", "batch_size", "learning_rate", "seed",
                                                       "validation_share", "class_weights", "device", "precision")
                if getattr(args, name) is not None}
    config = TrainConfig.for_task(False, **{"model": "resnet18", "epochs": 5, "batch_size": 16, **settings})
    record = create_run(store, frame, mapping, config, data_name=args.data.name, run_dir=args.output,
                        cluster=cluster)
    print(f"run {record.run_id} in {record.run_dir}", file=sys.stderr)
    return _finish(store, _execute(store, record.run_id, executor), args.json)


def _stop_on_interrupt() -> threading.Event:
    """Turn Ctrl-C into a clean stop: the current step ends and a checkpoint is written."""
    stop_event = threading.Event()

    def request_stop(signum, frame) -> None:
        print("stopping after the current step (press Ctrl-C again to abort)", file=sys.stderr)
        stop_event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, request_stop)
    return stop_event


def _resume(args: argparse.Namespace) -> int:
    store = RunStore()
    try:
        record = store.get_run(args.run_id)
    except KeyError:
        raise EduTuneError("cli.unknown_run", run_id=args.run_id) from None
    if record.is_active:
        store.mark_orphans_interrupted()
    executor = build_executor(args.executor)
    prepare_resume(store, record.run_id)
    return _finish(store, _execute(store, record.run_id, executor, resume=True), args.json)


def _finish(store: RunStore, record, as_json: bool, *, baselines: bool = False) -> int:
    if record.status not in (COMPLETED, STOPPED):
        error = record.error or {}
        failure = EduTuneError(error.get("key", "run.internal_error"), **error.get("params", {}))
        print(f"error: {failure.message('en')}", file=sys.stderr)
        return EXIT_INVALID if failure.key != "run.internal_error" else EXIT_FAILED
    if record.status == STOPPED:
        print(f"stopped; continue with: python -m edutune_core resume --run-id {record.run_id}", file=sys.stderr)
    header = {"run_id": record.run_id, "run_dir": str(record.run_dir), "status": record.status}
    if baselines:
        header["baselines"] = _baselines(record, as_json)
    _print_metrics(record.metrics or {}, as_json, header)
    return 0


def _baselines(record, as_json: bool) -> dict[str, dict]:
    """Fit the baselines on the run's own split and return each one's scalar metrics."""
    from edutune_core.baseline import baseline_metrics

    models = baseline_metrics(record)["models"]
    scalars = {kind: {name: values[name] for name in SCALAR_METRICS if name in values}
               for kind, values in models.items()}
    for kind, values in scalars.items():
        formatted = ", ".join(f"{name} {value:.4f}" for name, value in values.items())
        print(f"baseline {kind}: {formatted}", file=sys.stderr if as_json else sys.stdout)
    return scalars


def _predict(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() not in PREDICTION_SUFFIXES:
        raise EduTuneError("cli.output_format", path=str(args.output), formats=", ".join(PREDICTION_SUFFIXES))
    predictor = Predictor(args.run)
    table = _read(args.data, args)
    _print_input_warnings(predictor, table.frame)
    result = predictor.with_predictions(table.frame)
    try:
        if args.output.suffix.lower() == ".xlsx":
            write_xlsx(result, args.output)
        else:
            # A byte-order mark makes Excel read the file as UTF-8, so Chinese text shows correctly.
            result.to_csv(args.output, index=False, encoding="utf-8-sig")
    except OSError as error:
        raise EduTuneError("cli.write_failed", path=str(args.output), reason=error.strerror or str(error)) from error
    print(f"wrote {len(result)} rows to {args.output}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    predictor = Predictor(args.run)
    frame = _read(args.data, args).frame
    _print_input_warnings(predictor, frame)
    metrics = predictor.evaluate_frame(frame)
    _print_metrics(metrics, args.json, {"run_dir": str(args.run)})
    return 0


def _print_input_warnings(predictor: Predictor, frame) -> None:
    for warning in predictor.input_warnings(frame):
        print(f"warning: {warning.message('en')}", file=sys.stderr)


def _print_metrics(metrics: dict, as_json: bool, header: dict) -> None:
    scalars = {name: metrics[name] for name in SCALAR_METRICS if name in metrics}
    for name, value in scalars.items():
        print(f"{name}: {value:.4f}", file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps({**header, **scalars, "metrics": metrics}, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    commands = {"train": _train, "resume": _resume, "predict": _predict, "evaluate": _evaluate}
    try:
        return commands[args.command](args)
    except EduTuneError as error:
        print(f"error: {error.message('en')}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
