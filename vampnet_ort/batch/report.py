"""The batch report: ``OUT/vampnet-batch.jsonl``, one JSON object per input, appended as work finishes.

Each record is written as one line, flushed and fsynced before the next, so an interrupted or killed run still
holds a true report of what finished; reruns append. Fields:

- ``input``: the audio file; ``output``: the output path asked for (with variations the files are ``outputs``);
- ``status``: ``ok``, ``error`` or ``skipped`` (the outputs already existed: resume);
- ``error``: the one-line reason for ``error``, else null;
- ``seconds``: wall time spent on the file; ``seed``: the seed used (``vampnet-ort vamp --seed`` reproduces it);
- ``duration``: the input's duration in seconds (null when it could not be read); ``finished``: UTC time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from .constants import REPORT_NAME  # noqa: F401  (re-exported)

STATUSES = ("ok", "error", "skipped")


def make_record(*, input: str, output: Optional[str], outputs: List[str], status: str, seed: int,
                error: Optional[str] = None, seconds: float = 0.0, duration: Optional[float] = None,
                options_sha256: Optional[str] = None, options_changed: Optional[bool] = None) -> Dict[str, Any]:
    """One report line. An ``error`` record lists no ``outputs`` (none was written; ``output`` is the path that was
    asked for, or null for a manifest row that named none)."""
    assert status in STATUSES, status
    record = {
        "input": input, "output": output, "outputs": [] if status == "error" else outputs, "status": status,
        "error": error, "seconds": round(float(seconds), 4), "seed": int(seed),
        "duration": None if duration is None else round(float(duration), 6),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options_sha256": options_sha256,
    }
    if status == "skipped":
        record["options_changed"] = options_changed  # null: the finished file's options are not on record
    return record


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
    """Appends records to the report, each one durable before ``write`` returns. The report is opened with
    ``safety.open_report``: never through a symlink."""

    def __init__(self, path: Path) -> None:
        from .safety import open_report

        self.path = Path(path)
        self._fh = os.fdopen(open_report(self.path), "a", encoding="utf-8")
        if self._fh.tell() > 0:  # a killed run may have died mid-line: start ours on a fresh line
            with open(self.path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    self._fh.write("\n")

    def write(self, record: Dict[str, Any]) -> None:
        with _signals_held():
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
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
    """Every complete record of a report (a torn last line of a killed run is ignored)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
