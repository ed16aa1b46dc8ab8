"""Run training jobs on a Ray cluster, with the same run store, live curves, Stop and Resume.

The job manager's thread submits each run as a Ray task that requests the run's
resources (CPUs, GPUs, memory), so Ray's scheduler queues it until they are free. Ray
Train's ``TorchTrainer`` drives a run with more than one worker. Every worker process
trains the same model on its share of each optimizer step's rows, and
``torch.distributed`` sums the gradients (gloo on CPU, NCCL on GPU).

The worker runs ``edutune_core.runner.run_job`` on the same ``JobSpec`` as a local job.
It reads the data snapshot from the run folder and writes checkpoints and the model
there, so that folder (under ``$EDUTUNE_HOME``) must be on storage that every machine
of the cluster mounts at the same path. Metric points and events travel back through
a small ``RunChannel`` actor. The manager's thread drains it and writes them to the
run store, so the SQLite database is only ever written on the machine of the server.

This module imports Ray; ``edutune_core.executor`` imports it only when a cluster
executor is configured.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass

import ray
import torch
from ray.exceptions import RayError

from edutune_core.char_model import CHAR_MODEL
from edutune_core.config import TrainConfig
from edutune_core.executor import WAITING_EVENT, ClusterOptions, check_reachable
from edutune_core.i18n import EduTuneError, translate
from edutune_core.runner import (JobSpec, RunOutcome, StoreSink, failure_of, record_failure, record_outcome,
                                 run_job)
from edutune_core.runstore import INTERRUPTED, QUEUED, RUNNING, STOPPED, STOPPING, RunRecord, RunStore
from edutune_core.tasks import IMAGE_CLASSIFICATION, TABULAR
from edutune_core.training import TrainingJob

logger = logging.getLogger(__name__)

# Environment variables that cluster workers need to behave like the server process.
FORWARDED_ENV = ("EDUTUNE_HOME", "EDUTUNE_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME",
                 "TOKENIZERS_PARALLELISM")
# Seconds between two drains of a run's channel by the manager's thread.
POLL_S = 0.2
# Seconds a worker gathers metric points before it sends them to the channel together.
FLUSH_S = 0.25
# Seconds a submitted job may take to start (a new worker process imports torch) before
# the "waiting for resources" event is recorded.
WAITING_AFTER_S = 3.0
# Seconds between two "waiting for resources" events while the free resources change.
WAITING_REFRESH_S = 60.0
# Seconds a stopped job may take to write its checkpoint and model before it is cancelled by force.
STOP_TIMEOUT_S = 300.0
# Seconds a call to the run's channel actor may take before the cluster counts as lost.
CHANNEL_TIMEOUT_S = 60.0
# Seconds between two checks of the stop flag by a worker.
STOP_POLL_S = 0.25
# Seconds the free resources shown in the sidebar are reused before the cluster is asked again.
RESOURCES_CACHE_S = 5.0


def connect(setting: str) -> None:
    """Connect this process to the Ray cluster of ``setting``.

    A process that is already connected (a test, a notebook) keeps that connection,
    after the address has been checked.

    Raises:
        EduTuneError: ``cluster.unreachable`` when the cluster does not respond.
    """
    check_reachable(setting)
    if ray.is_initialized():
        logger.info("using this process's existing Ray connection for %s", setting)
        return
    environment = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    try:
        ray.init(address=setting, namespace="edutune", runtime_env={"env_vars": environment})
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        reason = str(error).strip().rstrip(".")[:300] or type(error).__name__
        raise EduTuneError("cluster.unreachable", address=setting, reason=reason) from error
    logger.info("connected to the Ray cluster at %s: %s", setting, ray.cluster_resources())


# One thread, so that the messages of a worker are stored in the order it sent them.
@ray.remote(num_cpus=0, max_restarts=0)
class RunChannel:
    """Messages from a run's workers to the job manager, and the manager's stop request."""

    def __init__(self) -> None:
        self.messages: list[tuple] = []
        self.stop = False

    def put(self, message: tuple) -> None:
        self.messages.append(message)

    def put_many(self, messages: list[tuple]) -> None:
        self.messages.extend(messages)

    def drain(self) -> list[tuple]:
        messages, self.messages = self.messages, []
        return messages

    def request_stop(self) -> None:
        self.stop = True

    def stop_requested(self) -> bool:
        return self.stop


class ChannelSink:
    """A ``MetricsSink`` on a worker that forwards everything to the run's channel.

    Ray runs the calls of one caller on an actor in the order they were made, so the
    manager records points and events in the order the job reported them.
    """

    def __init__(self, channel) -> None:
        self.channel = channel
        # Metric points wait here and go to the channel in one call every FLUSH_S. A small
        # model trains thousands of steps a second, and one actor call per point fell behind.
        self.pending: list[tuple] = []
        self.flushed_at = time.monotonic()

    def flush(self) -> None:
        if self.pending:
            self.channel.put_many.remote(self.pending)
            self.pending = []
        self.flushed_at = time.monotonic()

    def send(self, *message) -> None:
        self.flush()
        self.channel.put.remote(message)

    def send_and_wait(self, *message) -> None:
        self.flush()
        ray.get(self.channel.put.remote(message), timeout=CHANNEL_TIMEOUT_S)

    def start(self, total_steps: int) -> None:
        self.send("start", total_steps)

    def _add_point(self, split: str, step: int, epoch: float, values: dict[str, float]) -> None:
        # The worker's clock times the point, so a late drain does not shift the wall-clock curve.
        self.pending.append(("point", split, step, epoch, values, time.time()))
        if time.monotonic() - self.flushed_at >= FLUSH_S:
            self.flush()

    def log_train(self, step: int, epoch: float, values: dict[str, float]) -> None:
        self._add_point("train", step, epoch, values)

    def log_validation(self, step: int, epoch: float, values: dict[str, float]) -> None:
        self._add_point("validation", step, epoch, values)

    def log_event(self, kind: str, detail: dict) -> None:
        self.send("event", kind, detail)


class NullSink:
    """The sink of data-parallel workers other than the first, which report nothing."""

    def start(self, total_steps: int) -> None:
        pass

    def log_train(self, step: int, epoch: float, values: dict[str, float]) -> None:
        pass

    def log_validation(self, step: int, epoch: float, values: dict[str, float]) -> None:
        pass

    def log_event(self, kind: str, detail: dict) -> None:
        pass

    def send(self, *message) -> None:
        pass

    def send_and_wait(self, *message) -> None:
        pass


class StopWatcher(threading.Thread):
    """Sets ``stop_event`` once the manager has asked the run's channel to stop."""

    def __init__(self, channel, stop_event: threading.Event) -> None:
        super().__init__(name="edutune-stop-watcher", daemon=True)
        self.channel = channel
        self.stop_event = stop_event
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(STOP_POLL_S):
            try:
                requested = ray.get(self.channel.stop_requested.remote(), timeout=CHANNEL_TIMEOUT_S)
            except RayError as error:
                # Without the channel no result can reach the manager, so the job stops.
                logger.warning("lost the run channel, stopping: %s", error)
                requested = True
            if requested:
                self.stop_event.set()
                return


class CollectiveStop:
    """A stop flag that every data-parallel process reads with the same result.

    ``TrainingJob`` calls ``is_set`` at the same points on every process, so each call
    is one all-reduce (maximum) of the local flags. All processes therefore stop at the
    same optimizer step, and none waits forever in the next gradient sum.
    """

    def __init__(self, local: threading.Event, device: torch.device) -> None:
        self.local = local
        self.device = device
        self.stopped = False

    def is_set(self) -> bool:
        import torch.distributed as dist

        if self.stopped:
            return True
        flag = torch.tensor([1 if self.local.is_set() else 0], dtype=torch.int32, device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.stopped = bool(flag.item())
        return self.stopped

    def set(self) -> None:
        self.local.set()


class DataParallelTrainingJob(TrainingJob):
    """A ``TrainingJob`` that is one process of a data-parallel group.

    Every process starts from the same seed, so the weights and the data order are the
    same everywhere. Each takes every ``world_size``-th row of an optimizer step, and
    the gradients (weighted by each process's share of the step's rows) are summed over
    the group, which gives the gradient of the whole step. Only the first process
    writes checkpoints, the model and metrics.

    NOTE: the gradients are summed tensor by tensor after the backward pass. Unlike
    ``DistributedDataParallel`` this does not overlap communication with computation,
    so it is slower for large models on many GPUs.
    """

    def __init__(self, *args, rank: int, world_size: int, learning_rate_scale: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rank = rank
        self.world_size = world_size
        self.learning_rate_scale = learning_rate_scale
        if rank != 0:
            self.checkpoint_dir = None

    def setup(self) -> None:
        super().setup()
        self.sink.log_event("data_parallel", {
            "workers": self.world_size,
            "batch_size_per_worker": self.config.batch_size,
            "accumulation_steps": self.config.accumulation_steps,
            "effective_batch_size": self.rows_per_step,
            "learning_rate": self.learning_rate,
            "learning_rate_scale": self.learning_rate_scale,
        })

    def _sync_gradients(self, loss: float) -> float:
        import torch.distributed as dist

        parameters = [parameter for parameter in self.adapter.model.parameters() if parameter.requires_grad]
        # A process whose share of the step was empty has no gradients. A parameter
        # with no gradient on any process stays without one, so the optimizer skips
        # it as a single process would.
        has_gradient = torch.tensor([parameter.grad is not None for parameter in parameters], dtype=torch.int32,
                                    device=self.device)
        dist.all_reduce(has_gradient, op=dist.ReduceOp.MAX)
        for parameter, flag in zip(parameters, has_gradient.tolist()):
            if not flag:
                continue
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)
        total = torch.tensor([loss], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total.item())

    def save(self, run_dir) -> dict:
        if self.rank != 0:
            return self.best_metrics or {}
        return super().save(run_dir)


def _train_on_worker(spec_values: dict, channel, resume: bool, rank: int = 0, world_size: int = 1,
                     learning_rate_scale: float = 1.0, device: torch.device | None = None) -> None:
    """Run one job, or one process of a data-parallel job, and report to the channel.

    The first process sends ``("outcome", ...)`` or ``("failure", ...)`` last and waits
    until the channel has it. A data-parallel process re-raises an error, so that Ray
    Train ends the other processes, which may be waiting for it in a collective.
    """
    spec = JobSpec.from_dict(spec_values)
    sink = ChannelSink(channel) if rank == 0 else NullSink()
    local_stop = threading.Event()
    watcher = StopWatcher(channel, local_stop) if rank == 0 else None
    stop_event = local_stop if world_size == 1 else CollectiveStop(local_stop, device or torch.device("cpu"))
    sink.send_and_wait("running", {"pid": os.getpid(), "node": ray.util.get_node_ip_address(), "workers": world_size})
    if watcher is not None:
        watcher.start()
    make_job = TrainingJob
    if world_size > 1:
        make_job = functools.partial(DataParallelTrainingJob, rank=rank, world_size=world_size,
                                     learning_rate_scale=learning_rate_scale)
    try:
        outcome = run_job(spec, sink, stop_event, resume=resume, make_job=make_job)
        sink.send_and_wait("outcome", outcome.to_dict())
    except Exception as error:  # noqa: BLE001 - every failure must reach the manager
        if isinstance(error, EduTuneError):
            logger.warning("run %s failed on worker %d: %s", spec.run_id, rank, error)
        else:
            logger.exception("run %s failed with an internal error on worker %d", spec.run_id, rank)
        sink.send_and_wait("failure", failure_of(error))
        if world_size > 1:
            raise
    finally:
        if watcher is not None:
            watcher.finished.set()


@ray.remote(max_retries=0)
def _single_worker_task(spec_values: dict, channel, resume: bool) -> None:
    _train_on_worker(spec_values, channel, resume)


def _data_parallel_loop(loop_config: dict) -> None:
    """The function that Ray Train runs on every worker of a data-parallel job."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    device = ray.train.torch.get_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    _train_on_worker(loop_config["spec"], loop_config["channel"], loop_config["resume"],
                     rank=context.get_world_rank(), world_size=context.get_world_size(),
                     learning_rate_scale=loop_config["learning_rate_scale"], device=device)


@ray.remote(num_cpus=0, max_retries=0)
def _data_parallel_task(spec_values: dict, channel, resume: bool, plan_values: dict) -> None:
    """Drive a data-parallel job with Ray Train; it waits in Ray's queue for all workers at once."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    plan = ResourcePlan(**plan_values)
    use_gpu = plan.gpus_per_worker > 0
    resources = {"CPU": plan.cpus_per_worker, **({"GPU": plan.gpus_per_worker} if use_gpu else {}),
                 **({"memory": plan.memory_per_worker} if plan.memory_per_worker else {})}
    trainer = TorchTrainer(
        _data_parallel_loop,
        train_loop_config={"spec": spec_values, "channel": channel, "resume": resume,
                           "learning_rate_scale": plan.learning_rate_scale},
        scaling_config=ScalingConfig(num_workers=plan.workers, use_gpu=use_gpu, resources_per_worker=resources),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        # Ray Train keeps its own run state here; the run folder is on the shared storage.
        run_config=RunConfig(name=f"edutune-{spec_values['run_id']}",
                             storage_path=os.path.join(spec_values["run_dir"], "ray_train"),
                             failure_config=FailureConfig(max_failures=0)),
    )
    trainer.fit()


@dataclass
class ResourcePlan:
    """Resources one cluster job requests, per worker, and its learning-rate scale."""

    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    memory_per_worker: int | None
    learning_rate_scale: float

    def fits(self, free: dict) -> bool:
        """Return whether the whole request fits in the free resources ``free``."""
        return (free["CPU"] >= self.workers * self.cpus_per_worker
                and free["GPU"] >= self.workers * self.gpus_per_worker
                and free["memory"] >= self.workers * (self.memory_per_worker or 0))

    def message_params(self) -> dict:
        return {"workers": self.workers, "cpus": _number(self.cpus_per_worker), "gpus": _number(self.gpus_per_worker),
                "memory": _gigabytes(self.memory_per_worker)}


def _number(value: float) -> str:
    return f"{value:g}"


def _gigabytes(value: float | None) -> str:
    return "-" if not value else f"{value / 1e9:.1f} GB"


def plan_resources(record: RunRecord, options: ClusterOptions, cluster_gpus: float) -> ResourcePlan:
    """Work out the resources of ``record``'s job from its settings and the memory estimate.

    Cross-validation and learning-rate range tests run on one worker. Host memory is
    requested for CPU training of a text model, from ``edutune_core.memory``'s estimate.
    """
    config = TrainConfig.from_dict(record.config["train"])
    workers = options.workers
    if workers > 1 and (config.folds >= 2 or config.lr_range_test):
        logger.info("run %s uses one worker: cross-validation and range tests are not data-parallel", record.run_id)
        workers = 1
    gpus = options.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if config.device == "cuda" or (config.device == "auto" and cluster_gpus > 0) else 0.0
    if config.device in ("cpu", "mps"):
        # A job that trains on the CPU requests no GPU, and its workers communicate through gloo.
        gpus = 0.0
    memory = None
    text_task = record.task not in (TABULAR, IMAGE_CLASSIFICATION) and config.model != CHAR_MODEL
    if text_task and gpus == 0:
        from edutune_core.memory import estimate_text_training

        estimate = estimate_text_training(config, "cpu")
        memory = estimate.needed if estimate is not None else None
    scale = float(workers) if options.lr_scaling == "linear" else 1.0
    return ResourcePlan(workers=workers, cpus_per_worker=float(options.cpus_per_worker), gpus_per_worker=float(gpus),
                        memory_per_worker=memory, learning_rate_scale=scale)


class RayExecutor:
    """Runs each job on a Ray cluster; the job manager gives every job a thread of its own.

    Args:
        setting: ``auto``, ``host:port`` or ``ray://host:port``.
        options: Resources that jobs without their own ``cluster`` settings request.

    Raises:
        EduTuneError: ``cluster.unreachable`` when the cluster does not respond.
    """

    name = "ray"
    # Ray's scheduler queues the jobs by their resource requests.
    queues_jobs = True

    def __init__(self, setting: str, options: ClusterOptions | None = None) -> None:
        self.setting = setting
        self.options = options or ClusterOptions()
        self.options.validate()
        connect(setting)
        self._lock = threading.Lock()
        self._waiting: set[str] = set()
        self._resources_at = 0.0
        self._resources: dict = {}

    def free_resources(self) -> dict:
        """Return the cluster's free CPUs, GPUs and memory (bytes), cached for a few seconds."""
        with self._lock:
            if time.monotonic() - self._resources_at > RESOURCES_CACHE_S:
                available = ray.available_resources()
                self._resources = {"CPU": available.get("CPU", 0.0), "GPU": available.get("GPU", 0.0),
                                   "memory": available.get("memory", 0.0)}
                self._resources_at = time.monotonic()
            return dict(self._resources)

    def caption(self, lang: str) -> str:
        """Return the line the sidebar shows: the cluster, its free resources and the waiting jobs."""
        try:
            free = self.free_resources()
        except (RayError, ConnectionError) as error:
            logger.warning("cannot read the free resources of the Ray cluster %s: %s", self.setting, error)
            return translate("cluster.executor_lost", lang, address=self.setting)
        with self._lock:
            waiting = len(self._waiting)
        address = self.setting
        if address == "auto":
            # "auto" names no machine; the connected cluster's address does.
            address = f"auto ({ray.get_runtime_context().gcs_address})"
        return translate("cluster.executor_ray", lang, address=address, cpus=_number(free["CPU"]),
                         gpus=_number(free["GPU"]), memory=_gigabytes(free["memory"]), waiting=waiting)

    def run(self, store: RunStore, run_id: str, stop_event: threading.Event, *, resume: bool = False) -> RunRecord:
        """Submit the run to the cluster, record its progress until it ends, and return its record."""
        record = store.get_run(run_id)
        try:
            options = ClusterOptions.from_dict(record.config["cluster"]) if "cluster" in record.config else self.options
            plan = plan_resources(record, options, ray.cluster_resources().get("GPU", 0.0))
            follower = _JobFollower(self, store, record, plan, resume)
        except (RayError, ConnectionError) as error:
            logger.warning("run %s could not be submitted to the Ray cluster: %s", run_id, error)
            _record_interrupted(store, run_id, "submit_failed", error)
            return store.get_run(run_id)
        with self._lock:
            self._waiting.add(run_id)
        try:
            follower.follow(stop_event)
        except Exception as error:  # noqa: BLE001 - a job thread must record every failure
            logger.exception("following run %s on the Ray cluster failed", run_id)
            record_failure(store, run_id, failure_of(error))
        finally:
            with self._lock:
                self._waiting.discard(run_id)
            follower.close()
        return store.get_run(run_id)

    def mark_started(self, run_id: str) -> None:
        with self._lock:
            self._waiting.discard(run_id)


class _JobFollower:
    """Submits one job, copies its channel's messages into the run store and records how it ended."""

    def __init__(self, executor: RayExecutor, store: RunStore, record: RunRecord, plan: ResourcePlan,
                 resume: bool) -> None:
        self.executor = executor
        self.store = store
        self.run_id = record.run_id
        self.plan = plan
        self.sink = StoreSink(store, record.run_id)
        self.started = False
        self.result: tuple | None = None
        self.channel = RunChannel.remote()
        spec = JobSpec.from_record(record).to_dict()
        if plan.workers == 1:
            self.task = _single_worker_task.options(
                num_cpus=plan.cpus_per_worker, num_gpus=plan.gpus_per_worker,
                **({"memory": plan.memory_per_worker} if plan.memory_per_worker else {}),
            ).remote(spec, self.channel, resume)
        else:
            self.task = _data_parallel_task.remote(spec, self.channel, resume, asdict(plan))
        store.update_summary(record.run_id, {"executor": {"kind": "ray", "address": executor.setting,
                                                          **asdict(plan)}})
        logger.info("submitted run %s to the Ray cluster: %s", record.run_id, plan)

    def follow(self, stop_event: threading.Event) -> None:
        submitted = time.monotonic()
        waiting_recorded_at = None
        waiting_free = None
        cancelled = False
        stop_sent_at = None
        task_error: BaseException | None = None
        try:
            while True:
                done, _ = ray.wait([self.task], timeout=POLL_S)
                now = time.monotonic()
                # The stop request goes out before the drain, so that recording a backlog
                # of points does not delay it.
                if stop_event.is_set() and self.started and stop_sent_at is None and not done:
                    self.channel.request_stop.remote()
                    stop_sent_at = now
                self._apply(ray.get(self.channel.drain.remote(), timeout=CHANNEL_TIMEOUT_S))
                if done:
                    break
                if stop_event.is_set() and not self.started and not cancelled:
                    ray.cancel(self.task)
                    cancelled = True
                elif stop_event.is_set() and self.started and stop_sent_at is None:
                    self.channel.request_stop.remote()
                    stop_sent_at = now
                elif stop_sent_at is not None and now - stop_sent_at > STOP_TIMEOUT_S and not cancelled:
                    logger.warning("run %s did not stop within %.0f s; cancelling it by force", self.run_id,
                                   STOP_TIMEOUT_S)
                    ray.cancel(self.task, force=True)
                    cancelled = True
                if self.started or cancelled or now - submitted < WAITING_AFTER_S:
                    continue
                if waiting_recorded_at is None or now - waiting_recorded_at > WAITING_REFRESH_S:
                    free = self.executor.free_resources()
                    # NOTE: a job whose worker is still starting has its resources already,
                    # so a start slower than WAITING_AFTER_S is also shown as waiting.
                    if free != waiting_free and not self.plan.fits(free):
                        self._record_waiting(free)
                        waiting_free = free
                    waiting_recorded_at = now
            try:
                ray.get(self.task, timeout=CHANNEL_TIMEOUT_S)
            except RayError as error:
                task_error = error
            self._apply(ray.get(self.channel.drain.remote(), timeout=CHANNEL_TIMEOUT_S))
        except (RayError, ConnectionError) as error:
            # The channel actor or the connection to the cluster is gone.
            logger.warning("lost run %s on the Ray cluster: %s", self.run_id, error)
            self._cancel_quietly()
            _record_interrupted(self.store, self.run_id, "cluster_lost", error)
            return
        self._record_end(cancelled, task_error)

    def _record_end(self, cancelled: bool, task_error: BaseException | None) -> None:
        if self.result is not None and self.result[0] == "outcome":
            record_outcome(self.store, self.run_id, RunOutcome.from_dict(self.result[1]))
        elif self.result is not None:
            record_failure(self.store, self.run_id, self.result[1])
        elif cancelled and not self.started:
            self.store.set_status(self.run_id, STOPPED)
            self.store.add_event(self.run_id, "cancelled", {})
            logger.info("cancelled run %s before it started on the cluster", self.run_id)
        else:
            reason = "stop_timeout" if cancelled else "worker_lost"
            logger.warning("run %s ended on the cluster without a result (%s): %s", self.run_id, reason, task_error)
            _record_interrupted(self.store, self.run_id, reason, task_error)

    def _apply(self, messages: list[tuple]) -> None:
        points: list[tuple] = []
        for message in messages:
            kind = message[0]
            if kind == "point":
                points.append(message[1:])
                continue
            # Points go to the store in one transaction, before the next message keeps its order.
            self._write_points(points)
            if kind == "running":
                self.started = True
                self.executor.mark_started(self.run_id)
                status = self.store.get_run(self.run_id).status
                self.store.set_status(self.run_id, STOPPING if status == STOPPING else RUNNING)
                self.store.add_event(self.run_id, "cluster_started", message[1])
            elif kind == "start":
                self.sink.start(message[1])
            elif kind == "event":
                self.sink.log_event(message[1], message[2])
                if message[1] == "data_parallel":
                    self.store.update_summary(self.run_id, {"data_parallel": message[2]})
            elif kind in ("outcome", "failure"):
                self.result = message
        self._write_points(points)

    def _write_points(self, points: list[tuple]) -> None:
        if points:
            self.store.add_point_batch(self.run_id, points)
            points.clear()

    def _record_waiting(self, free: dict) -> None:
        message = self.plan.message_params() | {"free_cpus": _number(free["CPU"]), "free_gpus": _number(free["GPU"]),
                                                "free_memory": _gigabytes(free["memory"])}
        self.store.add_event(self.run_id, WAITING_EVENT, {"requested": asdict(self.plan), "free": free,
                                                          "message": message})
        logger.info("run %s waits for cluster resources: requested %s, free %s", self.run_id, self.plan, free)

    def _cancel_quietly(self) -> None:
        try:
            ray.cancel(self.task, force=True)
        except (RayError, ConnectionError, ValueError) as error:
            logger.warning("could not cancel run %s on the cluster: %s", self.run_id, error)

    def close(self) -> None:
        try:
            ray.kill(self.channel)
        except (RayError, ConnectionError, ValueError) as error:
            logger.warning("could not remove the channel of run %s: %s", self.run_id, error)


def _record_interrupted(store: RunStore, run_id: str, reason: str, error: BaseException | None) -> None:
    """Mark a run interrupted: its points and checkpoint stay, so it can be resumed."""
    status = store.get_run(run_id).status
    if status not in (QUEUED, RUNNING, STOPPING):
        return
    detail = {"reason": reason}
    if error is not None:
        detail["error"] = f"{type(error).__name__}: {error}"[:300]
    store.set_status(run_id, INTERRUPTED)
    store.add_event(run_id, "interrupted", detail)

