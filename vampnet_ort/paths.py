"""Path checks shared by every user interface (CLI, batch, app): run them before any work.

- ``check_input_file``: the path names a readable regular file (a FIFO, a device, a socket or a directory is refused
  from ``os.stat`` alone, so nothing ever blocks opening it);
- ``check_output_file``: the destination's directory exists and a file can be created there (probed by creating and
  removing an empty temporary file), and the path is not an existing directory;
- ``check_distinct``: no output is the input itself (resolved paths, so symlinks count, and the same inode, so hard
  links count too);
- ``is_within``: whether a path lies inside a directory (resolved).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable, Union

from .fileio import probe_writable

PathLike = Union[str, os.PathLike]


class PathError(ValueError):
    """A path that cannot be used as given (not a regular file, not writable, the input named as output, ...)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_input_file(path: PathLike, what: str = "input") -> Path:
    """`path` as a Path when it is an existing, readable regular file (symlinks followed); PathError otherwise."""
    p = Path(path)
    try:
        st = os.stat(p)  # never opens the file: a FIFO cannot block here
    except FileNotFoundError:
        raise PathError(f"{p}: no such file") from None
    except OSError as exc:
        raise PathError(f"{p}: cannot access the {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise PathError(f"{p}: is {_kind(st.st_mode)}; the {what} must be a regular file")
    if not os.access(p, os.R_OK):
        raise PathError(f"{p}: permission denied")
    return p


def _parent(p: Path) -> Path:
    return p.parent if str(p.parent) else Path(".")


def check_output_file(path: PathLike, what: str = "output") -> Path:
    """`path` as a Path when a file can be written there atomically (temporary file + rename in its directory)."""
    p = Path(path)
    directory = _parent(p)
    if not directory.is_dir():
        raise PathError(f"{p}: the {what} directory {directory} does not exist")
    if p.is_dir():
        raise PathError(f"{p}: is a directory; give a file name for the {what}")
    try:
        probe_writable(p)
    except OSError as exc:
        raise PathError(f"{p}: cannot write the {what} in {directory} ({exc.strerror or exc})") from None
    return p


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when `a` and `b` name the same file: equal resolved paths (symlinks) or the same inode (hard links)."""
    pa, pb = Path(a), Path(b)
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist (yet)
        return False


def check_distinct(input_path: PathLike, outputs: Iterable[PathLike]) -> None:
    """PathError when any of `outputs` is `input_path` itself: writing it would destroy the source."""
    for output in outputs:
        if same_file(input_path, output):
            raise PathError(f"{output}: the output is the input file {input_path}; choose another output path")


def is_within(path: PathLike, directory: PathLike) -> bool:
    """Whether `path` (resolved, symlinks followed) is `directory` or lies inside it."""
    p, d = Path(path).resolve(), Path(directory).resolve()
    return p == d or d in p.parents
