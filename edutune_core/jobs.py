"""The job manager: runs training jobs in background threads and queues the rest.

A server process has one manager. ``submit`` records nothing itself, because
``create_run`` already did, and puts the run in a first-in, first-out queue. Worker
threads take runs from it, at most ``max_concurrent`` at a time. The threads only talk to the run store,
never to a page, so every browser session sees progress by reading the store.

With a Ray cluster as executor (see ``edutune_core.executor``), every submitted run gets
its own thread at once, which hands the job to the cluster and records its progress.
The cluster's scheduler then queues the jobs by the resources they request.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading

from edutune_core.executor import build_executor
from edutune_core.runstore import QUEUED, RUNNING, STOPPED, STOPPING, RunStore

logger = logging.getLogger(__name__)


class JobManager:
    """Background training threads over one run store.

    Args:
        store: Where runs are recorded.
        max_concurrent: Jobs that train at the same time. One suits a CPU-only machine,
            where two jobs would only share the same cores. A cluster executor ignores it.
        executor: ``local``, ``auto`` or a Ray cluster address; None reads
            ``$EDUTUNE_EXECUTOR``. An executor object (``LocalExecutor``,
            ``RayExecutor``) is used as it is.

    Raises:
        EduTuneError: The executor setting is invalid, Ray is missing or the cluster
            does not answer.
    """

    def __init__(self, store: RunStore, max_concurrent: int = 1, executor=None) -> None:
        self.store = store
        self.executor = build_executor(executor) if executor is None or isinstance(executor, str) else executor
        self._cluster_threads: list[threading.Thread] = []
        self._queue: queue.Queue[tuple[str, bool] | None] = queue.Queue()
        self._waiting: list[str] = []
        self._stop_events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        interrupted = store.mark_orphans_interrupted()
        if interrupted:
            logger.info("runs interrupted by an earlier shutdown: %s", ", ".join(interrupted))
        self._workers = [threading.Thread(target=self._work, name=f"edutune-job-{index}", daemon=True)
                         for index in range(max_concurrent)]
        for worker in self._workers:
            worker.start()

    def submit(self, run_id: str, *, resume: bool = False) -> None:
        """Queue a run created with ``edutune_core.runner.create_run``.

        With ``resume``, the run continues from its checkpoint; call
        ``edutune_core.runner.prepare_resume`` first to check that it can.
        """
        with self._lock:
            self._stop_events[run_id] = threading.Event()
            if self.executor.queues_jobs:
                thread = threading.Thread(target=self._execute, args=(run_id, resume),
                                          name=f"edutune-cluster-{run_id}", daemon=True)
                self._cluster_threads.append(thread)
            else:
                self._waiting.append(run_id)
        if self.executor.queues_jobs:
            thread.start()
        else:
            self._queue.put((run_id, resume))
        logger.info("queued run %s%s", run_id, " to resume" if resume else "")

    def stop(self, run_id: str) -> bool:
        """Ask a run to stop after its current step; a queued run is cancelled at once.

        Returns:
            False when this manager does not run ``run_id``.
        """
        with self._lock:
            event = self._stop_events.get(run_id)
            waiting = run_id in self._waiting
            if event is None:
                return False
            if waiting:
                # A worker checks the event under this lock before it starts a run.
                event.set()
        if waiting:
            self.store.set_status(run_id, STOPPED)
            self.store.add_event(run_id, "cancelled", {})
        else:
            # "stopping" is written before the job can see the event, and only over an
            # active status. A fast job records "stopped" right after the event is set,
            # and that must stay the last word.
            self.store.set_status(run_id, STOPPING, only_from=(QUEUED, RUNNING))
            event.set()
        logger.info("stop requested for run %s", run_id)
        return True

    def queue_position(self, run_id: str) -> int | None:
        """Return 1 for the next run to start, None when ``run_id`` is not waiting."""
        with self._lock:
            if run_id not in self._waiting:
                return None
            return self._waiting.index(run_id) + 1

    def is_managed(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._stop_events

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every job, wait for the threads and return; used by tests and at exit."""
        with self._lock:
            events = list(self._stop_events.values())
        for event in events:
            event.set()
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout)
        for thread in list(self._cluster_threads):
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            run_id, resume = item
            with self._lock:
                self._waiting.remove(run_id)
            self._execute(run_id, resume)

    def _execute(self, run_id: str, resume: bool) -> None:
        with self._lock:
            event = self._stop_events.get(run_id)
        try:
            status = self.store.get_run(run_id).status
        except (sqlite3.Error, OSError) as error:
            # The disk is full or broken. The run stays queued until the next server start
            # marks it interrupted, and this worker lives on for the next job.
            logger.error("cannot read run %s before starting it: %s", run_id, error)
            self._forget(run_id, event)
            return
        if event is not None and event.is_set() and status == STOPPING:
            # Stopped after a worker took it from the queue and before it started.
            self.store.set_status(run_id, STOPPED, only_from=(STOPPING,))
            self.store.add_event(run_id, "cancelled", {})
        if event is None or event.is_set() or status != QUEUED:
            self._forget(run_id, event)
            return
        logger.info("starting run %s on the %s executor", run_id, self.executor.name)
        try:
            self.executor.run(self.store, run_id, event, resume=resume)
        except Exception:  # noqa: BLE001 - the worker thread must live on to run the next job
            logger.exception("run %s ended with an error that could not be recorded", run_id)
        finally:
            self._forget(run_id, event)

    def _forget(self, run_id: str, event: threading.Event | None) -> None:
        with self._lock:
            # A run resumed right after it stopped already has a new event; keep that one.
            if self._stop_events.get(run_id) is event:
                self._stop_events.pop(run_id, None)
            current = threading.current_thread()
            if current in self._cluster_threads:
                self._cluster_threads.remove(current)
