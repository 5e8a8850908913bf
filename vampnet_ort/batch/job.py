"""One unit of batch work, the same for every engine: a plain-data job in, ``Pipeline.vamp_file``, a record out.

A job is a JSON-able dict (it crosses process queues and Ray rows):
``{"index", "input", "output", "outputs", "options" (VampOptions as a dict), "output_sample_rate"}``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

from ..pipeline import Pipeline
from ..frontend import describe_error
from ..options import options_from_json
from .report import make_record


def one_line(exc: BaseException) -> str:
    """The error as one line, as the CLI prints it (``frontend.describe_error``)."""
    return describe_error(exc)


def partial_files(outputs: Iterable[str]) -> List[Path]:
    """Temporary files of interrupted atomic writes of `outputs` (``.NAME.*.part``, see ``audio.write_audio``)."""
    found: List[Path] = []
    for output in outputs:
        p = Path(output)
        if p.parent.is_dir():
            found.extend(q for q in p.parent.glob(f".{p.name}.*.part") if q.is_file())
    return found


def remove_partials(outputs: Iterable[str]) -> None:
    for path in partial_files(outputs):
        try:
            path.unlink()
        except OSError:
            pass


def outputs_complete(outputs: Iterable[str]) -> bool:
    """Every output exists as a regular, non-empty file. Outputs are only ever renamed into place complete."""
    return all(Path(o).is_file() and Path(o).stat().st_size > 0 for o in outputs)


def input_duration(path: str) -> Optional[float]:
    try:
        import soundfile

        return float(soundfile.info(path).duration)
    except Exception:  # unreadable: the vamp itself reports why
        return None


def run_job(pipe: Pipeline, job: Mapping[str, Any], on_finished: Any = None) -> Dict[str, Any]:
    """Vamp one file; never raises for a bad file (an ``error`` record), only for KeyboardInterrupt/SystemExit.

    `on_finished.interruptible` (when given) is set False the moment ``vamp_file`` has returned, so that a stop
    request from then on waits for the record (``local._StopControl``)."""
    started = time.perf_counter()
    options = options_from_json(job["options"])
    target = Path(job["output"])
    duration = input_duration(job["input"])
    error: Optional[str] = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # concurrent workers: exist_ok; never removed again
        remove_partials(job["outputs"])  # left by a run that was killed (SIGKILL) mid-write
        try:
            pipe.vamp_file(job["input"], target, options, output_sample_rate=job.get("output_sample_rate"))
        finally:
            if on_finished is not None:  # also on KeyboardInterrupt: vamp_file has removed its files by now
                on_finished.interruptible = False
    except Exception as exc:  # MemoryError included; KeyboardInterrupt propagates (vamp_file cleans up)
        error = one_line(exc)
    return make_record(input=job["input"], output=job["output"], outputs=list(job["outputs"]),
                       status="ok" if error is None else "error", error=error, seed=int(options.seed),
                       seconds=time.perf_counter() - started, duration=duration,
                       options_sha256=job.get("options_sha256"))
