"""``vamp_many``: find the inputs, plan one job per file, skip finished ones, run an engine, write the report."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from ..frontend import bundle_dir
from ..options import VampOptions, check_output_sample_rate
from ..pipeline import output_paths
from .constants import ENGINES, OUTPUT_FORMATS, PLANNED_NAME, REPORT_NAME
from .inputs import BatchInput, InputError, collect_inputs, shown  # noqa: F401  (InputError re-exported)
from .job import Job, input_duration, outputs_complete
from .report import Record, ReportWriter, read_report
from .safety import (
    check_out_dir,
    check_plan,
    existing_regular_file,
    open_report,
    own_outputs,
    read_planned,
)

PathLike = Union[str, os.PathLike]
_KEPT_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})

class BatchError(ValueError):
    """A batch that cannot start: bad options, colliding outputs, an output that would replace its input."""


_UNKNOWN = object()


def _cap(value: int, name: str, log: Callable[[str], None]) -> int:
    """`value` capped at the CPUs this process may use, with a note (as ``vamp --threads``)."""
    cores = available_cores()
    if value > cores:
        log(f"note: {name} {value} capped at {cores}, the CPUs available to this process")
        return cores
    return value


def _finished_options(records: Sequence[Mapping[str, Any]]) -> Dict[tuple, Optional[str]]:
    """The options digest each finished output set was made with: the last ``ok`` record's."""
    made: Dict[tuple, Optional[str]] = {}
    for record in records:
        if record.get("status") == "ok" and isinstance(record.get("outputs"), list):
            made[tuple(record["outputs"])] = record.get("options_sha256")
    return made


def record_planned(path: Path, out: Path, outputs: Sequence[str]) -> None:
    """Append this run's new planned outputs to the journal (one path relative to --out per line, fsynced) before
    any work: a file one of them names is the batch's own even when its record was lost (a killed driver, Ray)."""
    if not outputs:
        return
    fd = open_report(path)
    try:
        os.write(fd, "".join(os.path.relpath(p, out).replace(os.sep, "/") + "\n" for p in outputs).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_threads(workers: int) -> int:
    """Intra-op threads per worker: the cores shared evenly, at least 1."""
    return max(1, available_cores() // max(1, workers))


def file_seed(seed: int, relative: str) -> int:
    """The per-file seed (``--per-file-seed``): the first 62 bits of sha256("SEED:RELATIVE/PATH")."""
    digest = hashlib.sha256(f"{int(seed)}:{relative}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def _output_relative(item: BatchInput, output_format: Optional[str]) -> PurePosixPath:
    if item.explicit_output:
        return item.relative
    if output_format is not None:
        return item.relative.with_suffix("." + output_format)
    if item.relative.suffix.lower() in _KEPT_SUFFIXES:
        return item.relative
    return item.relative.with_suffix(".wav")


def plan_jobs(items: Sequence[BatchInput], out_dir: Path, options: VampOptions, *, n_codebooks: int,
              output_format: Optional[str] = None, per_file_seed: bool = False,
              output_sample_rate: Optional[int] = None) -> List[Job]:
    """One job per input (see ``job.py``), every option checked and every output path decided before any work."""
    from ..audio import check_writable_format

    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise BatchError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    check_output_sample_rate(output_sample_rate)
    options.validate(n_codebooks)
    jobs: List[Job] = []
    for index, item in enumerate(items):
        if item.error is not None:  # a bad manifest row (or a broken link): its own error record, never run
            jobs.append(Job(index=index, input=item.origin, output=None, outputs=(), options=options,
                            origin=item.origin, error=item.error))
            continue
        relative = _output_relative(item, output_format)
        target = (out_dir / Path(*relative.parts)).absolute()
        item_options, rate = options, output_sample_rate
        overrides = item.overrides
        try:
            if overrides.fields:
                item_options = overrides.apply(options)  # validated as built
                item_options.validate(n_codebooks)
            if overrides.output_sample_rate is not None:
                rate = overrides.output_sample_rate[0]
                check_output_sample_rate(rate)
            if per_file_seed and "seed" not in overrides.names:
                item_options = dataclasses.replace(item_options, seed=file_seed(options.seed, relative.as_posix()))
            outputs = output_paths(target, int(item_options.variations))
            for path in outputs:
                check_writable_format(path)
        except ValueError as exc:  # PipelineError, MaskError, AudioError: this row only
            jobs.append(Job(index=index, input=item.origin, output=str(target), outputs=(), options=options,
                            origin=item.origin, error=shown(str(exc))))
            continue
        jobs.append(Job(index=index, input=str(item.source.absolute()), output=str(target),
                        outputs=tuple(str(p) for p in outputs), options=item_options,
                        output_sample_rate=None if rate is None else int(rate), origin=item.origin))
    return jobs


@dataclass
class BatchSummary:
    ok: int = 0
    error: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0  # input audio vamped by this run (ok records)

    def add(self, record: Record) -> None:
        setattr(self, record.status, getattr(self, record.status) + 1)
        if record.status == "ok" and record.duration:
            self.audio_seconds += float(record.duration)


class _Progress:
    """One overall bar: files done, audio seconds vamped per second of wall time, and the current file."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.started = time.perf_counter()
        self.summary = BatchSummary()
        self.current = ""
        self.starts_known = False  # the local engine says when a file starts; Ray Data does not
        self.bar = None
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", desc="batch", file=sys.stderr, dynamic_ncols=True,
                            disable=None, smoothing=0.1)

    def _refresh(self) -> None:
        if self.bar is None:
            return
        rate = self.summary.audio_seconds / max(1e-9, time.perf_counter() - self.started)
        failed = f" {self.summary.error} failed," if self.summary.error else ""
        self.bar.set_postfix_str(f"{failed} {rate:.2f} audio-s/s | {self.current}", refresh=True)

    def start(self, job: Job) -> None:
        self.starts_known = True
        self.current = Path(job.input).name
        self._refresh()

    def finish(self, record: Record) -> None:
        self.summary.add(record)
        if self.bar is not None:
            if record.status != "skipped" and not self.starts_known:
                self.current = "last: " + Path(record.input).name
            self.bar.update(1)
        self._refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_batch(
    inputs: Union[PathLike, Iterable[PathLike]],
    out_dir: PathLike,
    options: Optional[VampOptions] = None,
    *,
    engine: str = "local",
    workers: int = 1,
    threads: Optional[int] = None,
    models: Optional[PathLike] = None,
    output_format: Optional[str] = None,
    output_sample_rate: Optional[int] = None,
    per_file_seed: bool = False,
    ray_address: Optional[str] = None,
    progress: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> List[Record]:
    """Vamp every audio file of `inputs` (files, folders, CSV/JSONL manifests) into `out_dir`, mirroring their
    relative paths; returns this run's ``Record``s (also appended to ``out_dir/vampnet-batch.jsonl``).

    Files whose outputs already exist are ``skipped``; a file that fails is an ``error`` record and the batch goes
    on. ``models`` is a bundle directory (default: the demo bundle). ``workers`` processes (or Ray actors) each get
    ``threads`` intra-op threads (default: the cores shared evenly). KeyboardInterrupt stops cleanly (no partial
    outputs, the report holds what finished) and propagates."""
    from ..bundle import read_manifest_info

    options = options if options is not None else VampOptions()
    if engine not in ENGINES:
        raise BatchError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if int(workers) < 1:
        raise BatchError(f"workers must be >= 1, got {workers}")
    if threads is not None and int(threads) < 1:
        raise BatchError(f"threads must be >= 1, got {threads}")
    if ray_address is not None and engine != "ray":
        raise BatchError("--ray-address needs --engine ray")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out}: exists and is not a directory")
    bundle_path, _ = bundle_dir(models, log)  # the demo bundle without `models` (the note goes to `log`)
    n_codebooks = read_manifest_info(bundle_path).n_codebooks  # cheap checks before any hashing
    bundle = str(bundle_path.absolute())
    note = log if log is not None else (lambda _m: None)
    given = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    check_out_dir(out, [Path(p).expanduser() for p in given if Path(p).expanduser().is_dir()])
    items = collect_inputs(given, exclude=out)
    jobs = plan_jobs(items, out, options, n_codebooks=n_codebooks, output_format=output_format,
                     per_file_seed=per_file_seed, output_sample_rate=output_sample_rate)
    runnable = [job for job in jobs if job.error is None]
    previous = read_report(out / REPORT_NAME) if existing_regular_file(out / REPORT_NAME) else []
    own = own_outputs(previous) | read_planned(out / PLANNED_NAME)
    check_plan([(job.origin or job.input, Path(job.input), [Path(p) for p in job.outputs]) for job in runnable],
               own, REPORT_NAME)
    if engine == "local":
        workers = _cap(int(workers), "--workers", note)
    if threads is not None:
        threads = _cap(int(threads), "--threads", note)
    threads = int(threads) if threads is not None else default_threads(int(workers))

    out.mkdir(parents=True, exist_ok=True)
    records: List[Record] = []
    bar = _Progress(len(jobs), progress)
    finished_with = _finished_options(previous)
    changed = 0
    with ReportWriter(out / REPORT_NAME) as report:
        record_planned(out / PLANNED_NAME, out, [p for job in runnable for p in job.outputs
                                                 if os.path.realpath(p) not in own])

        def on_record(record: Record) -> None:
            report.write(record)
            records.append(record)
            bar.finish(record)

        todo = []
        for job in jobs:
            if job.error is not None:
                on_record(job.record("error", error=job.error))
            elif outputs_complete(job.outputs):
                before = finished_with.get(tuple(job.outputs), _UNKNOWN)
                differs = None if before is _UNKNOWN or before is None else before != job.options_sha256
                changed += bool(differs)
                on_record(job.record("skipped", duration=input_duration(job.input), options_changed=differs))
            else:
                todo.append(job)
        if changed:
            note(f"note: {changed} finished file{'s were' if changed != 1 else ' was'} vamped with other options "
                 f"than this run's (see options_sha256 in {REPORT_NAME}); they are skipped: delete them or choose "
                 "another --out to vamp them again")
        try:
            if engine == "local":
                from .local import run_local

                run_local(todo, bundle=bundle, workers=int(workers), threads=threads, on_start=bar.start,
                          on_record=on_record)
            else:
                from .ray_engine import run_ray

                run_ray(todo, bundle=bundle, workers=int(workers), threads=threads, address=ray_address,
                        on_record=on_record, quiet=not progress)
        finally:
            bar.close()
    return records


def vamp_many(inputs: Union[PathLike, Iterable[PathLike]], out_dir: PathLike, options: Optional[VampOptions] = None,
              **kwargs: Any) -> List[Dict[str, Any]]:
    """``run_batch`` (same arguments) returning the records as the report's JSON objects."""
    return [record.to_json() for record in run_batch(inputs, out_dir, options, **kwargs)]
