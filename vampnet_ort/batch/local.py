"""The local engine: N worker processes (spawned), each loading the bundle once, fed one job at a time.

The driver hands a job to a worker only when that worker is idle, so it always knows which file each worker
holds: a worker that dies (a crash, the OOM killer) turns its file into an ``error`` record and is replaced.
Workers ignore SIGINT; on Ctrl-C the driver stops handing out work and sends each worker SIGTERM, which a
worker turns into KeyboardInterrupt: the pipeline's atomic writers remove their temporary files, no output is
left half-written, and the driver sweeps what a hard kill may have left.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

from .job import Job, input_duration, one_line, remove_partials, run_job
from .report import Record

WORKER_STOP_TIMEOUT_S = 30.0
_POLL_S = 0.25


class WorkerStartError(ValueError):
    """A worker could not load the bundle: every file would fail the same way."""


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _StopControl:
    """SIGTERM in a worker: KeyboardInterrupt while it waits or vamps (the pipeline's writers then remove their
    temporary files), but only a stop request between a finished file and its record, so that a file written
    is never left without its record."""

    def __init__(self) -> None:
        self.interruptible = True
        self.stop_requested = False

    def on_sigterm(self, signum: int, frame: object) -> None:
        if self.interruptible:
            raise KeyboardInterrupt
        self.stop_requested = True


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this worker when the driver dies, even by SIGKILL (``PR_SET_PDEATHSIG``), so that no worker
    outlives its batch; the SIGTERM becomes the usual clean stop. Elsewhere a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the driver died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(worker_id: int, bundle: str, threads: int, tasks: Any, results: Any, parent: int = 0) -> None:
    control = _StopControl()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver coordinates Ctrl-C,
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # and a terminal's hangup (it reaches the process group)
    signal.signal(signal.SIGTERM, control.on_sigterm)
    if parent:
        _die_with_parent(parent)
    try:
        from ..pipeline import Pipeline

        try:
            pipe = Pipeline(bundle, intra_op_threads=threads, progress=False)
        except Exception as exc:
            results.put(("init_error", worker_id, one_line(exc)))
            return
        results.put(("ready", worker_id, None))
        while not control.stop_requested:
            data = tasks.get()
            if data is None:
                return
            job = Job.from_json(data)  # the queue carries Job.to_json(): one serialised form of the options
            results.put(("start", worker_id, job.index))
            record = run_job(pipe, job, on_finished=control)
            results.put(("done", worker_id, record))
            control.interruptible = True
    except KeyboardInterrupt:
        return


class _Worker:
    def __init__(self, ctx: Any, worker_id: int, bundle: str, threads: int, results: Any) -> None:
        self.id = worker_id
        self.tasks = ctx.Queue()
        self.process = ctx.Process(target=_worker_main,
                                   args=(worker_id, bundle, threads, self.tasks, results, os.getpid()),
                                   name=f"vampnet-batch-{worker_id}", daemon=True)
        with _sigint_ignored():  # inherited through exec: a Ctrl-C during start-up reaches only the driver
            self.process.start()
        self.job: Optional[Job] = None  # the job it holds
        self.ready = False
        self.since = time.perf_counter()

    def give(self, job: Optional[Job]) -> None:
        self.job = job
        self.since = time.perf_counter()
        self.tasks.put(None if job is None else job.to_json())


def run_local(jobs: List[Job], *, bundle: str, workers: int, threads: int,
              on_start: Callable[[Job], None],
              on_record: Callable[[Record], None]) -> None:
    """Process `jobs` on `workers` processes of `threads` intra-op threads each, reporting through the callbacks
    (called in this process). KeyboardInterrupt stops the workers cleanly and propagates."""
    if not jobs:
        return
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    todo = list(reversed(jobs))
    pool: Dict[int, _Worker] = {}
    next_id = 0
    restarts_left = 2 * workers

    def start_worker() -> None:
        nonlocal next_id
        pool[next_id] = _Worker(ctx, next_id, bundle, threads, results)
        next_id += 1

    def feed(worker: _Worker) -> None:
        worker.give(todo.pop() if todo else None)

    try:
        for _ in range(min(workers, len(jobs))):
            start_worker()
        while todo or any(w.job is not None for w in pool.values()):
            try:
                kind, worker_id, payload = results.get(timeout=_POLL_S)
            except queue.Empty:
                for worker in list(pool.values()):
                    if worker.process.is_alive() or worker.process.exitcode is None:
                        continue
                    del pool[worker.id]
                    if worker.job is not None:  # it died holding a file
                        job = worker.job
                        code = worker.process.exitcode
                        why = f"signal {-code}" if code < 0 else f"exit status {code}"
                        remove_partials(job.outputs)
                        on_record(job.record("error", error=f"the worker process died ({why}) on this file",
                                             seconds=time.perf_counter() - worker.since,
                                             duration=input_duration(job.input)))
                    if todo and restarts_left > 0:
                        restarts_left -= 1
                        start_worker()
                if not pool and todo:
                    raise WorkerStartError("every worker process died; see the errors in the report")
                continue
            worker = pool.get(worker_id)
            if worker is None:
                continue
            if kind == "init_error":
                raise WorkerStartError(str(payload))
            if kind == "ready":
                worker.ready = True
                feed(worker)
            elif kind == "start" and worker.job is not None:
                on_start(worker.job)
            elif kind == "done":
                on_record(payload)
                feed(worker)
    finally:
        _stop(list(pool.values()))
        finished = set()
        while True:  # files finished while the workers were stopping still get their records
            try:
                kind, _, payload = results.get(timeout=0.05)
            except (queue.Empty, OSError, EOFError, ValueError):
                break
            except Exception:  # a message torn by a killed worker
                break
            if kind == "done" and payload.output not in finished:
                finished.add(payload.output)
                on_record(payload)


def _stop(pool: List[_Worker]) -> None:
    """Stop every worker: a polite None to idle ones, SIGTERM (-> KeyboardInterrupt) to busy ones, then a kill
    after the timeout; finally sweep the temporary files of the files they held."""
    for worker in pool:
        if worker.process.is_alive():
            if worker.job is None:
                worker.tasks.put(None)
            else:
                worker.process.terminate()
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
    for worker in pool:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        if worker.job is not None:
            remove_partials(worker.job.outputs)
        worker.tasks.close()
        worker.tasks.cancel_join_thread()
