"""The Ray engine: Ray Data over the jobs, ``map_batches`` with a callable class that loads the bundle once per
actor (an actor pool of `workers` actors: ``compute=ActorPoolStrategy(size=workers)``, what Ray < 2.51 called
``concurrency``; ``num_cpus`` = the actor's intra-op threads). Outputs are written by the actors
with the same ``run_job`` as the local engine, so the files are identical for the same seeds.

Without an address a local Ray instance is started (``num_cpus`` = workers x threads) and stopped; with one,
``ray.init(address=...)`` joins that cluster, whose nodes must see the bundle and the output folder at the same
paths (shared storage) and have vampnet-ort installed (docs/BATCH.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Optional

from .job import Job, one_line, remove_partials, run_job
from .report import Record

OBJECT_STORE_BYTES = 256 * 1024 * 1024  # rows are small JSON strings; a local instance needs little


@contextlib.contextmanager
def _empty_working_directory() -> Iterator[None]:
    """Ray puts the driver's working directory first on its workers' sys.path: started inside a source checkout,
    the actors would import the uncompiled source tree instead of the installed package. Every job path is
    absolute, so the driver connects from an empty directory."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="vampnet-batch-ray-") as empty:
        os.chdir(empty)
        try:
            yield
        finally:
            os.chdir(previous)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError("--engine ray needs Ray Data: pip install 'vampnet-ort[ray]'") from None
    return ray


class RayVamper:
    """The Ray Data callable class: one Pipeline per actor, one job per row."""

    def __init__(self, bundle: str, threads: int) -> None:
        from ..pipeline import Pipeline

        self.pipe = Pipeline(bundle, intra_op_threads=threads, progress=False)

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[str]]:
        records = [json.dumps(run_job(self.pipe, Job.from_json(json.loads(str(job)))).to_json())
                   for job in batch["job"]]
        return {"record": records}


def run_ray(jobs: List[Job], *, bundle: str, workers: int, threads: int, address: Optional[str],
            on_record: Callable[[Record], None],
            quiet: bool = True) -> None:
    """Process `jobs` with Ray Data; records reach `on_record` as the actors finish them (any order; Ray Data
    does not say when a row starts, so progress shows the last file finished)."""
    if not jobs:
        return
    ray = _ray()
    if ray.is_initialized():  # the caller's own Ray session (Python API): use it, leave it running
        if address is not None:
            raise ValueError("Ray is already initialized in this process; call without ray_address to use it")
        pending = {job.output: job for job in jobs}
        try:
            return _run(ray, jobs, pending, bundle=bundle, workers=workers, threads=threads, on_record=on_record)
        finally:
            _sweep(pending)
    started_here = address is None
    init = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=not quiet,
                configure_logging=True)
    if quiet:  # the driver's core worker logs actor-restart caveats at error level; keep stderr to our errors
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    with _empty_working_directory():
        if started_here:
            ray.init(address="local", num_cpus=workers * threads, object_store_memory=OBJECT_STORE_BYTES, **init)
        else:
            ray.init(address=address, **init)
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING if not quiet else logging.ERROR)
    pending = {job.output: job for job in jobs}
    try:
        _run(ray, jobs, pending, bundle=bundle, workers=workers, threads=threads, on_record=on_record)
    finally:
        if started_here:
            ray.shutdown()  # stops the actors: only then is sweeping their temporary files safe
        _sweep(pending)


def _sweep(pending: Dict[str, Job]) -> None:
    """Remove temporary files that stopped actors may have left for the files that did not finish."""
    for job in pending.values():
        remove_partials(job.outputs)


def _run(ray: Any, jobs: List[Job], pending: Dict[str, Job], *, bundle: str,
         workers: int, threads: int, on_record: Callable[[Record], None]) -> None:
    """Run the dataset; `pending` (output -> job) loses each job whose record came back."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = False
    rows = [{"job": json.dumps(job.to_json())} for job in jobs]  # one serialised form of the options
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))  # one row per block: even spread
    vamped = dataset.map_batches(RayVamper, fn_constructor_kwargs=dict(bundle=bundle, threads=threads),
                                 batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
                                 num_cpus=threads, batch_format="numpy")
    try:
        for row in vamped.iter_rows():
            record = Record.from_json(json.loads(row["record"]))
            pending.pop(record.output, None)
            on_record(record)
    except Exception as exc:  # the Ray job failed as a whole (an actor could not start, a node was lost)
        message = f"ray: {one_line(exc)}"
        for job in list(pending.values()):
            remove_partials(job.outputs)
            on_record(job.record("error", error=message))
        pending.clear()
