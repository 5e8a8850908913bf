"""The batch report: ``OUT/vampnet-batch.jsonl``, one JSON object per input, appended as work finishes.

Each record is written as one line, flushed and fsynced before the next, so an interrupted or killed run still
holds a true report of what finished; reruns append. Fields (``Record``):

- ``input``: the audio file; ``output``: the output path asked for (with variations the files are ``outputs``);
- ``status``: ``ok``, ``error`` or ``skipped`` (the outputs already existed: resume);
- ``error``: the one-line reason for ``error``, else null;
- ``seconds``: wall time spent on the file; ``seed``: the seed used (``vampnet-ort vamp --seed`` reproduces it);
- ``duration``: the input's duration in seconds (null when it could not be read); ``finished``: UTC time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .constants import REPORT_NAME  # noqa: F401  (re-exported)

STATUSES = ("ok", "error", "skipped")


@dataclass(frozen=True)
class Record:
    """What happened to one input: a line of the report."""

    input: str
    output: str
    outputs: Tuple[str, ...]
    status: str
    error: Optional[str]
    seconds: float
    seed: int
    duration: Optional[float]
    finished: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"record status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def to_json(self) -> Dict[str, Any]:
        """The report line's object (field order as written)."""
        return {"input": self.input, "output": self.output, "outputs": list(self.outputs), "status": self.status,
                "error": self.error, "seconds": self.seconds, "seed": self.seed, "duration": self.duration,
                "finished": self.finished}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Record":
        return Record(input=str(data["input"]), output=str(data["output"]),
                      outputs=tuple(str(o) for o in data["outputs"]), status=str(data["status"]),
                      error=data.get("error"), seconds=float(data["seconds"]), seed=int(data["seed"]),
                      duration=None if data.get("duration") is None else float(data["duration"]),
                      finished=str(data["finished"]))


def make_record(*, input: str, output: str, outputs: Sequence[str], status: str, seed: int,
                error: Optional[str] = None, seconds: float = 0.0, duration: Optional[float] = None) -> Record:
    """A record finished now (seconds rounded to 0.1 ms, duration to 1 us)."""
    return Record(input=str(input), output=str(output), outputs=tuple(str(o) for o in outputs), status=status,
                  error=error, seconds=round(float(seconds), 4), seed=int(seed),
                  duration=None if duration is None else round(float(duration), 6),
                  finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))


class ReportWriter:
    """Appends records to the report, each one durable before ``write`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "a", encoding="utf-8")
        if self._fh.tell() > 0:  # a killed run may have died mid-line: start ours on a fresh line
            with open(self.path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    self._fh.write("\n")

    def write(self, record: Record) -> None:
        self._fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "ReportWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_report(path: Path) -> List[Dict[str, Any]]:
    """Every complete record of a report, as its JSON objects (a torn last line of a killed run is ignored)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
