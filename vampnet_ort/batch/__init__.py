"""Vamp a whole collection: ``vamp_many`` (and ``vampnet-ort batch``), resumable, on local worker processes or Ray.

A thin layer over ``vampnet_ort.pipeline.Pipeline.vamp_file``: this package only finds the inputs, plans one job
per file (output path, options with the per-file overrides, seed), skips finished ones, hands the jobs to an
engine and writes the report. See docs/BATCH.md.

Seeds: a file's seed is ``options.seed`` (``--seed``, default 0), the same for every file, so
``vampnet-ort vamp FILE OUT --seed S`` with the same options reproduces any output; a manifest's ``seed`` column
overrides it per file; ``per_file_seed=True`` (``--per-file-seed``) derives a distinct seed for each file from the
seed and the file's relative output path (``file_seed``). The seed used is in every record.
"""

from __future__ import annotations

from typing import Any

from .constants import ENGINES, OUTPUT_FORMATS, REPORT_NAME

_CORE_NAMES = ("vamp_many", "run_batch", "plan_jobs", "file_seed", "default_threads", "BatchError", "BatchSummary")

__all__ = ["ENGINES", "OUTPUT_FORMATS", "REPORT_NAME", "read_report", "Record", "Job", "InputError", "OverrideError", *_CORE_NAMES]


def __getattr__(name: str) -> Any:  # lazy: `vampnet-ort --help` registers the batch command without numpy/ORT
    if name in _CORE_NAMES:
        from . import core

        return getattr(core, name)
    if name in ("read_report", "Record"):
        from . import report

        return getattr(report, name)
    if name == "Job":
        from .job import Job

        return Job
    if name == "InputError":
        from .inputs import InputError

        return InputError
    if name == "OverrideError":
        from ..options import OverrideError

        return OverrideError
    raise AttributeError(f"module 'vampnet_ort.batch' has no attribute {name!r}")
