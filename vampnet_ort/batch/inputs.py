"""What a batch reads: audio files, folders (recursive, by audio extension) and CSV / JSON-lines manifests.

Every input becomes a ``BatchInput``: the audio file, the relative path its output mirrors under ``--out``, and
the per-file overrides of a manifest row. Problems with the command itself (a missing path given on the command
line, an unreadable folder, a manifest that cannot be read, a CSV header without ``input`` or with a duplicate
column) raise ``InputError`` naming the file (and line). A bad row (not JSON, nested too deeply, a number of
thousands of digits, an unknown option or a bad value, a NUL byte, an over-long name or a symlink loop in its path)
becomes a ``BatchInput`` with an ``error`` naming the file and line: the batch records it as an error and goes on.
A missing or unreadable audio file is left to the batch, which records it as an error too.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterable, List, Optional, Union

from ..options import OverrideError, Overrides, parse_overrides

PathLike = Union[str, os.PathLike]

# Found in folders; a file named on the command line or in a manifest is tried whatever its extension.
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                              ".au", ".snd", ".caf", ".w64"})
MANIFEST_EXTENSIONS = frozenset({".csv", ".jsonl", ".ndjson"})
INPUT_COLUMN = "input"
OUTPUT_COLUMN = "output"
MAX_NAME_BYTES = 255  # one path component (NAME_MAX on Linux, macOS, Windows file systems)
MAX_PATH_BYTES = 4095  # a whole path (PATH_MAX - 1 on Linux)
MAX_TOKEN = 200  # characters of one word (a number, a name) of a user's value quoted in a message
MAX_MESSAGE = 1000  # characters of a message in a report record


class InputError(ValueError):
    """A batch input that cannot be used: missing path, unparsable manifest, bad column or row."""


@dataclass
class BatchInput:
    source: Path  # the audio file
    relative: PurePosixPath  # where its output goes under --out (extension decided later)
    origin: str  # for messages: the path as given, or "manifest.csv:3"
    overrides: Overrides = field(default_factory=Overrides)  # a manifest row's, names and types checked
    explicit_output: bool = False  # `relative` came from a manifest's output column (keep its extension)
    error: Optional[str] = None  # why a bad manifest row (or a broken link) is not run; recorded as its error


def shown(text: str) -> str:
    """A message or a user's value for a report line: control characters escaped, every run of more than MAX_TOKEN
    non-blank characters (a 5000-digit number, a 300-byte name) cut to its start, and at most MAX_MESSAGE
    characters in all."""
    text = str(text)
    if any(ord(c) < 32 for c in text):
        text = text.encode("unicode_escape").decode("ascii")
    text = re.sub(r"\S{%d,}" % (MAX_TOKEN + 1), lambda m: m.group()[:MAX_TOKEN] + "...", text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def path_problem(path: Path) -> Optional[str]:
    """Why `path` can never name a file, found without opening it: a NUL byte, an over-long name or path, a
    symlink loop. None when it may (a missing or unreadable file is left to the vamp, which says why)."""
    text = str(path)
    if "\0" in text:
        return "the input path holds a NUL byte"
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > MAX_NAME_BYTES:
        return f"a name in the input path is too long ({longest} bytes; file systems allow {MAX_NAME_BYTES})"
    if len(os.fsencode(text)) > MAX_PATH_BYTES:
        return f"the input path is too long ({len(os.fsencode(text))} bytes)"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "the input path is a symlink loop"
        if exc.errno == errno.ENAMETOOLONG:
            return "the input path is too long"
    except ValueError:
        return "the input path cannot be used"
    return None


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _inside(path: Path, directory: Optional[Path]) -> bool:
    if directory is None:
        return False
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def scan_folder(folder: Path, exclude: Optional[Path] = None) -> List[BatchInput]:
    """Audio files under `folder` (recursive, sorted, hidden files and folders skipped, nothing under `exclude`,
    the batch's own output folder)."""
    def unreadable(exc: OSError) -> None:  # os.walk would skip the folder silently
        raise InputError(f"{exc.filename or folder}: cannot read this folder ({exc.strerror or exc})")

    found: List[BatchInput] = []
    for root, dirs, files in os.walk(folder, followlinks=False, onerror=unreadable):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(root_path / d, exclude))
        for name in sorted(files):
            path = root_path / name
            relative = path.relative_to(folder)
            if path.suffix.lower() not in AUDIO_EXTENSIONS or _is_hidden(relative):
                continue
            if not path.is_file() and not path.is_symlink():  # a FIFO, a socket, a device: not audio
                continue
            # a dangling link or a symlink loop is listed: its record says why it was not vamped
            found.append(BatchInput(source=path, relative=PurePosixPath(relative.as_posix()), origin=str(path),
                                    error=None if path.is_file() else path_problem(path) or "a dangling symlink"))
    return found


def _safe_relative(text: str) -> Optional[PurePosixPath]:
    """`text` as a relative path that stays inside the output folder, else None."""
    p = PurePosixPath(text.replace("\\", "/"))  # PurePosixPath drops "." parts and empty parts
    if p.is_absolute() or not p.parts or ".." in p.parts:
        return None
    return p


def _manifest_rows(path: Path) -> Iterable[tuple[int, Union[Dict[str, Any], str]]]:
    """(line number, row) of a CSV (header row required) or JSON-lines manifest; a row that cannot be parsed comes
    as the reason instead."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines(keepends=True))
        try:
            header = reader.fieldnames
        except csv.Error as exc:
            raise InputError(f"{path}:1: malformed CSV header ({exc})") from None
        names = [f.strip() for f in header or []]
        if not header or INPUT_COLUMN not in names:
            raise InputError(f"{path}: a CSV manifest needs a header row with an '{INPUT_COLUMN}' column")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:  # csv.DictReader would keep the last value silently
            raise InputError(f"{path}:1: duplicate column {', '.join(repr(shown(d)) for d in duplicates)}")
        try:
            for row in reader:
                if None in row:
                    yield reader.line_num, f"more fields than the header has columns"
                    continue
                yield reader.line_num, {k.strip(): v for k, v in row.items() if v is not None}
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg})"
            continue
        except RecursionError:
            yield number, "not a usable JSON object (nested too deeply)"
            continue
        except ValueError as exc:  # an integer beyond Python's 4300-digit conversion limit
            why = "a number has more than 4300 digits" if "digits" in str(exc) else shown(str(exc))
            yield number, f"not a usable JSON object ({why})"
            continue
        if not isinstance(row, dict):
            yield number, f"each line must be a JSON object, got {type(row).__name__}"
            continue
        yield number, row


def read_manifest(path: Path) -> List[BatchInput]:
    """The rows of a manifest. Columns: ``input`` (audio path, relative to the manifest's folder), optional
    ``output`` (relative path under --out), and per-file overrides named like the vamp options (checked later).
    A bad row is a ``BatchInput`` with ``error`` set."""
    items: List[BatchInput] = []
    for number, row in _manifest_rows(path):
        where = f"{path}:{number}"
        try:
            items.append(_manifest_item(path, where, row))
        except _RowError as exc:
            items.append(BatchInput(source=path, relative=PurePosixPath(path.name), origin=where, error=str(exc)))
    if not items:
        raise InputError(f"{path}: the manifest lists no inputs")
    return items


class _RowError(ValueError):
    """Why one manifest row cannot be used (its record names the row)."""


def _manifest_item(path: Path, where: str, row: Union[Dict[str, Any], str]) -> BatchInput:
    if isinstance(row, str):
        raise _RowError(row)
    source_text = row.get(INPUT_COLUMN)
    if not isinstance(source_text, str) or not source_text.strip():
        raise _RowError(f"the '{INPUT_COLUMN}' field is missing or empty")
    source_text = source_text.strip()
    if "\0" in source_text:
        raise _RowError(f"the input path holds a NUL byte")
    source = Path(source_text).expanduser()
    source = source if source.is_absolute() else path.parent / source
    problem = path_problem(source)
    if problem is not None:
        raise _RowError(f"{problem}")
    output_text = row.get(OUTPUT_COLUMN)
    explicit = isinstance(output_text, str) and bool(output_text.strip())
    if explicit:
        relative = _safe_relative(output_text.strip())
        if relative is None or "\0" in output_text:
            raise _RowError(f"output '{shown(output_text)}' must be a relative path inside --out")
    elif output_text is not None and not isinstance(output_text, str):
        raise _RowError(f"output must be a string path, got {shown(repr(output_text))}")
    else:
        relative = _safe_relative(source_text) or PurePosixPath(source.name)
    given = {k: v for k, v in row.items()
             if k not in (INPUT_COLUMN, OUTPUT_COLUMN) and not (isinstance(v, str) and not v.strip())}
    try:
        overrides = parse_overrides(given)  # names and types now; option ranges when the batch is planned
    except (OverrideError, ValueError) as exc:  # ValueError: int() of thousands of digits
        raise _RowError(shown(str(exc))) from None
    return BatchInput(source=source, relative=relative, origin=where, overrides=overrides, explicit_output=explicit)


def collect_inputs(inputs: Iterable[PathLike], exclude: Optional[Path] = None) -> List[BatchInput]:
    """Expand the batch's INPUT arguments: files, folders and manifests, in the order given."""
    items: List[BatchInput] = []
    given = list(inputs)
    if not given:
        raise InputError("no inputs given")
    for raw in given:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = scan_folder(path, exclude=exclude)
            if not found:
                raise InputError(f"{path}: no audio files in this folder "
                                 f"(looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
            items.extend(found)
        elif not path.exists():
            raise InputError(f"{path}: no such file or folder")
        elif not path.is_file():
            raise InputError(f"{path}: not a regular file or folder")
        elif path.suffix.lower() in MANIFEST_EXTENSIONS:
            items.extend(read_manifest(path))
        else:
            items.append(BatchInput(source=path, relative=PurePosixPath(path.name), origin=str(path)))
    return items
