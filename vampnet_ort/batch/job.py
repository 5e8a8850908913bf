"""One unit of batch work, the same for every engine: a ``Job`` in, ``Pipeline.plan_file`` + ``run``, a ``Record``
out.

A job crosses process queues and Ray rows as ``Job.to_json()`` (plain JSON data: the options in their one
serialised form, ``options.options_to_json``) and is rebuilt with ``Job.from_json`` where it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ..frontend import describe_error
from ..options import VampOptions, options_from_json, options_to_json
from ..pipeline import Pipeline
from .report import Record, make_record


@dataclass(frozen=True)
class Job:
    """One input file's planned work: where its output(s) go and the options (per-file overrides applied)."""

    index: int
    input: str  # absolute (a bad manifest row: "list.csv:3")
    output: Optional[str]  # the output asked for (absolute); with variations the files are `outputs`
    outputs: Tuple[str, ...]
    options: VampOptions
    output_sample_rate: Optional[int] = None
    origin: str = ""  # for messages: the path as given, or "list.csv:3"
    error: Optional[str] = None  # a bad manifest row (or a broken link): never run, only its error record

    @property
    def seed(self) -> int:
        return int(self.options.seed)

    @property
    def options_sha256(self) -> Optional[str]:
        """sha256 of the options and output rate (recorded, so a rerun can say when they changed)."""
        if self.error is not None:
            return None
        from .safety import options_digest

        return options_digest(options_to_json(self.options), self.output_sample_rate)

    def to_json(self) -> Dict[str, Any]:
        return {"index": self.index, "input": self.input, "output": self.output, "outputs": list(self.outputs),
                "options": options_to_json(self.options), "output_sample_rate": self.output_sample_rate,
                "origin": self.origin, "error": self.error}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Job":
        rate = data.get("output_sample_rate")
        return Job(index=int(data["index"]), input=str(data["input"]),
                   output=None if data.get("output") is None else str(data["output"]),
                   outputs=tuple(str(o) for o in data["outputs"]), options=options_from_json(data["options"]),
                   output_sample_rate=None if rate is None else int(rate), origin=str(data.get("origin", "")),
                   error=data.get("error"))

    def record(self, status: str, *, error: Optional[str] = None, seconds: float = 0.0,
               duration: Optional[float] = None, options_changed: Optional[bool] = None) -> Record:
        """This job's report record (an error record lists no outputs)."""
        return make_record(input=self.input, output=self.output, outputs=self.outputs, status=status,
                           seed=self.seed, error=error, seconds=seconds, duration=duration,
                           options_sha256=self.options_sha256, options_changed=options_changed)


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


def run_job(pipe: Pipeline, job: Job, on_finished: Any = None) -> Record:
    """Vamp one file; never raises for a bad file (an ``error`` record), only for KeyboardInterrupt/SystemExit.

    `on_finished.interruptible` (when given) is set False the moment the vamp has returned, so that a stop
    request from then on waits for the record (``local._StopControl``)."""
    started = time.perf_counter()
    target = Path(job.output)
    duration = input_duration(job.input)
    error: Optional[str] = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # concurrent workers: exist_ok; never removed again
        remove_partials(job.outputs)  # left by a run that was killed (SIGKILL) mid-write
        try:
            planned = pipe.plan_file(job.input, target, job.options, output_sample_rate=job.output_sample_rate)
            pipe.run(planned)
        finally:
            if on_finished is not None:  # also on KeyboardInterrupt: run has removed its files by now
                on_finished.interruptible = False
    except Exception as exc:  # MemoryError included; KeyboardInterrupt propagates (run cleans up)
        error = one_line(exc)
    return job.record("ok" if error is None else "error", error=error, seconds=time.perf_counter() - started,
                      duration=duration)
