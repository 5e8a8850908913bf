"""Checks that keep a batch from destroying files it did not write, run on the whole plan before any work.

- ``check_out_dir``: ``--out`` is not an input folder (a rerun would vamp its own outputs or refuse to resume);
- ``check_plan``: every planned output against every input and every other planned output (exact paths, the same
  inode, and names that differ only in case, which collide on case-insensitive file systems), and against every
  existing file the batch did not write (a file at an output path is the batch's own only when the report records
  it as an output);
- ``open_report``, ``read_planned``: the report and the journal of planned outputs are regular files inside
  ``--out``, never read or written through a symlink;
- ``options_digest``: the sha256 of a job's options, recorded per file, so that a rerun can say when its options
  changed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple


class PlanError(ValueError):
    """A batch that would write over a file it did not write, or over one of its own inputs."""


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _identity(path: Path) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def check_out_dir(out_dir: Path, input_folders: Iterable[Path]) -> None:
    """PlanError when `out_dir` is one of the input folders (resolved)."""
    out = _resolved(out_dir)
    for folder in input_folders:
        if _resolved(folder) == out:
            raise PlanError(f"--out {out_dir} is the input folder {folder}: the outputs would mix with the inputs "
                            "(choose another --out; a folder inside the input folder is fine)")


def own_outputs(records: Iterable[Mapping[str, Any]]) -> Set[str]:
    """The resolved paths the report records as written by this batch (ok records, and skipped ones: resumed)."""
    own: Set[str] = set()
    for record in records:
        if record.get("status") in ("ok", "skipped"):
            for output in record.get("outputs") or []:
                if isinstance(output, str):
                    own.add(str(_resolved(Path(output))))
    return own


class _Listing:
    """Directory listings, read once each: names that differ from a wanted one only in case."""

    def __init__(self) -> None:
        self._names: Dict[Path, List[str]] = {}

    def case_twins(self, path: Path) -> List[Path]:
        directory = path.parent
        if directory not in self._names:
            try:
                self._names[directory] = os.listdir(directory)
            except OSError:
                self._names[directory] = []
        folded = path.name.casefold()
        return [directory / name for name in self._names[directory]
                if name != path.name and name.casefold() == folded]


def check_plan(plan: Sequence[Tuple[str, Path, Sequence[Path]]], own: Set[str], report_name: str) -> None:
    """`plan`: (origin for messages, input file, its planned output files) per job. PlanError naming both sides
    of the first conflict."""
    claimed: Dict[str, Tuple[str, Path]] = {}  # casefolded resolved output -> (origin, output)
    for origin, _, outputs in plan:
        for output in outputs:
            resolved = _resolved(output)
            key = str(resolved).casefold()
            if key in claimed:
                other_origin, other = claimed[key]
                if other == resolved:
                    raise PlanError(f"{other_origin} and {origin} would both write {output}")
                raise PlanError(f"{other_origin} would write {other} and {origin} {resolved}: names that differ "
                                "only in case are one file on case-insensitive file systems")
            claimed[key] = (origin, resolved)
    identities = {}
    for origin, output in claimed.values():
        identity = _identity(output)
        if identity is not None:
            identities[identity] = (origin, output)
    for origin, source, _ in plan:
        resolved = _resolved(source)
        hit = claimed.get(str(resolved).casefold())
        if hit is None:
            identity = _identity(source)
            hit = identities.get(identity) if identity is not None else None
        if hit is not None:
            out_origin, output = hit
            if out_origin == origin:
                raise PlanError(f"{origin}: the output {output} would replace its input (choose another --out)")
            how = "is" if output == resolved else "is (a hard link, or a name differing only in case)"
            raise PlanError(f"{out_origin}: the output {output} {how} the input of {origin}; choose another --out "
                            "or another output name")
    listing = _Listing()
    for origin, output in claimed.values():
        if os.path.lexists(output):
            if str(output) not in own:
                raise PlanError(f"{output} exists and is not an output of this batch (no record in {report_name}); "
                                f"{origin} would replace it: move it away or choose another --out")
            continue
        for twin in listing.case_twins(output):
            raise PlanError(f"{twin} exists and differs only in case from {output}, the output of {origin}: one "
                            "file on case-insensitive file systems; move it away or choose another --out")


def existing_regular_file(path: Path) -> bool:
    """Whether the report or journal `path` exists; PlanError when it is a symlink or not a regular file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise PlanError(f"{path} is a symlink (to {os.readlink(path)}); the batch never reads or writes its report "
                        "through a link: remove it")
    if not stat.S_ISREG(st.st_mode):
        raise PlanError(f"{path} exists and is not a regular file")
    return True


def read_planned(path: Path) -> Set[str]:
    """The resolved outputs earlier runs planned (``PLANNED_NAME`` in --out: one path relative to --out per line,
    appended before each run's work), so that a file whose record was lost (a driver killed between a worker's
    rename and the record, a Ray actor) is still known as the batch's own. Never read through a symlink."""
    if not existing_regular_file(path):
        return set()
    out = path.parent
    planned: Set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line and "\0" not in line:
                planned.add(str(_resolved(out / line)))
    return planned


def open_report(path: Path) -> int:
    """A file descriptor appending to `path` (the report, the journal): created if missing; refused when it is a
    symlink or not a regular file (never written through a link to a file outside --out)."""
    existing_regular_file(path)
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                       | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PlanError(f"{path} is a symlink; the batch never writes its report through a link: remove it") from None
        raise PlanError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


def options_digest(options: Mapping[str, Any], output_sample_rate: Optional[int]) -> str:
    """sha256 of a job's options (canonical JSON), as the report records it."""
    text = json.dumps({"options": options, "output_sample_rate": output_sample_rate}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
