"""What a batch reads: audio files, folders (recursive, by audio extension) and CSV / JSON-lines manifests.

Every input becomes a ``BatchInput``: the audio file, the relative path its output mirrors under ``--out``, and
the per-file overrides of a manifest row. Problems with the command itself (a missing path given on the command
line, a manifest that cannot be parsed, an unknown column) raise ``InputError`` naming the file and row; a
missing or unreadable audio file listed in a manifest is left to the batch, which records it as an error.
"""

from __future__ import annotations

import csv
import json
import os
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


class InputError(ValueError):
    """A batch input that cannot be used: missing path, unparsable manifest, bad column or row."""


@dataclass
class BatchInput:
    source: Path  # the audio file
    relative: PurePosixPath  # where its output goes under --out (extension decided later)
    origin: str  # for messages: the path as given, or "manifest.csv:3"
    overrides: Overrides = field(default_factory=Overrides)  # a manifest row's, names and types checked
    explicit_output: bool = False  # `relative` came from a manifest's output column (keep its extension)


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
    found: List[BatchInput] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(root_path / d, exclude))
        for name in sorted(files):
            path = root_path / name
            relative = path.relative_to(folder)
            if path.suffix.lower() not in AUDIO_EXTENSIONS or _is_hidden(relative) or not path.is_file():
                continue
            found.append(BatchInput(source=path, relative=PurePosixPath(relative.as_posix()), origin=str(path)))
    return found


def _safe_relative(text: str) -> Optional[PurePosixPath]:
    """`text` as a relative path that stays inside the output folder, else None."""
    p = PurePosixPath(text.replace("\\", "/"))  # PurePosixPath drops "." parts and empty parts
    if p.is_absolute() or not p.parts or ".." in p.parts:
        return None
    return p


def _manifest_rows(path: Path) -> Iterable[tuple[int, Dict[str, Any]]]:
    """(line number, row) of a CSV (header row required) or JSON-lines manifest."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines(keepends=True))
        if not reader.fieldnames or INPUT_COLUMN not in [f.strip() for f in reader.fieldnames]:
            raise InputError(f"{path}: a CSV manifest needs a header row with an '{INPUT_COLUMN}' column")
        try:
            for row in reader:
                if None in row:
                    raise InputError(f"{path}:{reader.line_num}: more fields than the header has columns")
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
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: each line must be a JSON object, got {type(row).__name__}")
        yield number, row


def read_manifest(path: Path) -> List[BatchInput]:
    """The rows of a manifest. Columns: ``input`` (audio path, relative to the manifest's folder), optional
    ``output`` (relative path under --out), and per-file overrides named like the vamp options (checked later)."""
    items: List[BatchInput] = []
    for number, row in _manifest_rows(path):
        where = f"{path}:{number}"
        source_text = row.get(INPUT_COLUMN)
        if not isinstance(source_text, str) or not source_text.strip():
            raise InputError(f"{where}: the '{INPUT_COLUMN}' field is missing or empty")
        source_text = source_text.strip()
        source = Path(source_text).expanduser()
        source = source if source.is_absolute() else path.parent / source
        output_text = row.get(OUTPUT_COLUMN)
        explicit = isinstance(output_text, str) and bool(output_text.strip())
        if explicit:
            relative = _safe_relative(output_text.strip())
            if relative is None:
                raise InputError(f"{where}: output '{output_text}' must be a relative path inside --out")
        elif output_text is not None and not isinstance(output_text, str):
            raise InputError(f"{where}: output must be a string path, got {output_text!r}")
        else:
            relative = _safe_relative(source_text) or PurePosixPath(source.name)
        given = {k: v for k, v in row.items()
                 if k not in (INPUT_COLUMN, OUTPUT_COLUMN) and not (isinstance(v, str) and not v.strip())}
        try:
            overrides = parse_overrides(given)  # names and types now; option ranges when the batch is planned
        except OverrideError as exc:
            raise InputError(f"{where}: {exc}") from None
        items.append(BatchInput(source=source, relative=relative, origin=where, overrides=overrides,
                                explicit_output=explicit))
    if not items:
        raise InputError(f"{path}: the manifest lists no inputs")
    return items


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
