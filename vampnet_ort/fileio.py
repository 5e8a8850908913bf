"""Atomic file publication shared by every writer (audio, plots, exported models).

Files are written to a temporary name in the destination directory and renamed into place, so a failure never
leaves a half-written file. ``tempfile.mkstemp`` creates files readable by the owner only; ``publish`` gives them
the mode a plain ``open(path, "w")`` would have (0666 minus the umask) before the rename.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional


def _umask() -> int:
    try:  # Linux: read it without changing process state
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    return 0o666 & ~_umask()


def publish(tmp: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Give `tmp` the default file mode and atomically rename it to `destination`."""
    os.chmod(tmp, default_file_mode())
    os.replace(tmp, destination)
    return Path(destination)


def temporary_sibling(path: str | os.PathLike, suffix: str = ".part") -> str:
    """Create an empty file next to `path`, named ``.NAME.XXXXXXXX<suffix>`` (the name batch sweeps look for), and
    return its name. OSError when the directory does not take new files."""
    p = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=str(p.parent if str(p.parent) else "."))
    os.close(fd)
    return name


def probe_writable(path: str | os.PathLike) -> None:
    """Whether a file can be created next to `path`: create and remove a ``.probe`` sibling (OSError if not)."""
    os.unlink(temporary_sibling(path, suffix=".probe"))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, tmp: Optional[str] = None) -> Iterator[str]:
    """Write `path` all or nothing, the one way every writer does: yields a temporary sibling (`tmp`, or a new
    ``.NAME.*.part``) to write; when the block ends it is published (``publish``: file mode, rename), and on any
    exception (KeyboardInterrupt included) it is removed and the exception propagates."""
    name = tmp if tmp is not None else temporary_sibling(path)
    try:
        yield name
        publish(name, path)
    except BaseException:
        try:
            os.unlink(name)
        except OSError:
            pass
        raise


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def rename_no_replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename `src` to `dst`, failing with FileExistsError when `dst` exists (a file, or a directory even when
    empty): Linux ``renameat2(RENAME_NOREPLACE)``, atomic. Where that is unavailable (no glibc wrapper, or a file
    system without the flag) it falls back to a check followed by ``os.rename``, which can lose a race."""
    function = _renameat2()
    if function is not None:
        if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), os.fspath(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(dst))
    os.rename(src, dst)
