"""The batch report: ``OUT/vampnet-batch.jsonl``, one JSON object per input, appended as work finishes.

Each record is written as one line, flushed and fsynced before the next, so an interrupted or killed run still
holds a true report of what finished; reruns append. Fields (``Record``):

- ``input``: the audio file; ``output``: the output path asked for (with variations the files are ``outputs``);
- ``status``: ``ok``, ``error`` or ``skipped`` (the outputs already existed: resume);
- ``error``: the one-line reason for ``error``, else null;
- ``seconds``: wall time spent on the file; ``seed``: the seed used (``vampnet-ort vamp --seed`` reproduces it);
- ``duration``: the input's duration in seconds (null when it could not be read); ``finished``: UTC time;
- ``options_sha256``: sha256 of the file's options (``safety.options_digest``; null for a bad manifest row); a
  ``skipped`` record also has ``options_changed``: whether the finished file was made with other options (null:
  not on record). An ``error`` record lists no ``outputs``; its ``output`` is null for a bad manifest row.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .constants import REPORT_NAME  # noqa: F401  (re-exported)

STATUSES = ("ok", "error", "skipped")


@dataclass(frozen=True)
class Record:
    """What happened to one input: a line of the report."""

    input: str
    output: Optional[str]
    outputs: Tuple[str, ...]
    status: str
    error: Optional[str]
    seconds: float
    seed: int
    duration: Optional[float]
    finished: str
    options_sha256: Optional[str] = None
    options_changed: Optional[bool] = None  # skipped records only

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"record status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.status == "error" and self.outputs:
            raise ValueError("an error record lists no outputs (none was written)")

    def to_json(self) -> Dict[str, Any]:
        """The report line's object (field order as written)."""
        data = {"input": self.input, "output": self.output, "outputs": list(self.outputs), "status": self.status,
                "error": self.error, "seconds": self.seconds, "seed": self.seed, "duration": self.duration,
                "finished": self.finished, "options_sha256": self.options_sha256}
        if self.status == "skipped":
            data["options_changed"] = self.options_changed
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Record":
        return Record(input=str(data["input"]), output=None if data.get("output") is None else str(data["output"]),
                      outputs=tuple(str(o) for o in data["outputs"]), status=str(data["status"]),
                      error=data.get("error"), seconds=float(data["seconds"]), seed=int(data["seed"]),
                      duration=None if data.get("duration") is None else float(data["duration"]),
                      finished=str(data["finished"]), options_sha256=data.get("options_sha256"),
                      options_changed=data.get("options_changed"))


def make_record(*, input: str, output: Optional[str], outputs: Sequence[str], status: str, seed: int,
                error: Optional[str] = None, seconds: float = 0.0, duration: Optional[float] = None,
                options_sha256: Optional[str] = None, options_changed: Optional[bool] = None) -> Record:
    """A record finished now (seconds rounded to 0.1 ms, duration to 1 us); an error record lists no outputs."""
    return Record(input=str(input), output=None if output is None else str(output),
                  outputs=() if status == "error" else tuple(str(o) for o in outputs), status=status,
                  error=error, seconds=round(float(seconds), 4), seed=int(seed),
                  duration=None if duration is None else round(float(duration), 6),
                  finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  options_sha256=options_sha256, options_changed=options_changed)


_WRITE_SIGNALS = {s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done (main thread, POSIX): a record is never torn by the
    KeyboardInterrupt the batch turns them into."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WRITE_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class ReportWriter:
    """Appends records to the report, each one durable before ``write`` returns; never through a symlink
    (``safety.open_report``)."""

    def __init__(self, path: Path) -> None:
        from .safety import open_report

        self.path = Path(path)
        self._fh = os.fdopen(open_report(self.path), "a", encoding="utf-8")
        if self._fh.tell() > 0:  # a killed run may have died mid-line: start ours on a fresh line
            with open(self.path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    self._fh.write("\n")

    def write(self, record: Record) -> None:
        with _signals_held():
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
