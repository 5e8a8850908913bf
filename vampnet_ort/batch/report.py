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

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from .constants import REPORT_NAME  # noqa: F401  (re-exported)

STATUSES = ("ok", "error", "skipped")


def make_record(*, input: str, output: str, outputs: List[str], status: str, seed: int,
                error: Optional[str] = None, seconds: float = 0.0, duration: Optional[float] = None) -> Dict[str, Any]:
    assert status in STATUSES, status
    return {
        "input": input, "output": output, "outputs": outputs, "status": status, "error": error,
        "seconds": round(float(seconds), 4), "seed": int(seed),
        "duration": None if duration is None else round(float(duration), 6),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


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

    def write(self, record: Dict[str, Any]) -> None:
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
