"""What every front end (CLI, batch, Gradio app, web server) shares: the vamp and runtime arguments, the one-line
error, the note logger, and opening the bundle or the demo bundle.

Standard library only at import time (the CLI builds its parser before numpy is imported).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Tuple, Union

from . import options as option_table

Log = Callable[[str], None]


# ---------------------------------------------------------------------------------------------- arguments
def add_verbose(parser: Any) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show ONNX Runtime's own log lines (warnings and errors; off by default)")


def add_models(parser: Any, help: str = "bundle directory from 'vampnet-ort export' (default: the demo bundle)") -> None:
    parser.add_argument("--models", metavar="DIR", help=help)


def add_quiet(parser: Any, help: str = "no progress bars or notes") -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help=help)


def add_threads(parser: Any, help: str = "ONNX Runtime intra-op threads (default: all cores)") -> None:
    parser.add_argument("--threads", type=int, metavar="N", help=help)


def add_server(parser: Any, *, port_help: str) -> None:
    """--host and --port of the servers (app, web)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, metavar="N", help=port_help)


def add_vamp_arguments(parser: argparse.ArgumentParser, *, batch: bool = False) -> None:
    """The vamp options (from ``vampnet_ort.options.OPTIONS``) and the output/runtime arguments; `batch`: as
    ``vampnet-ort batch`` takes them (no --plot, --threads per worker)."""
    option_table.add_arguments(parser)
    o = parser.add_argument_group("output and runtime")
    if not batch:
        o.add_argument("--plot", metavar="PNG", help="also write a PNG of the input codes, the mask and the output codes")
    option_table.add_output_sample_rate(o)
    add_threads(o, "ONNX Runtime intra-op threads per worker (default: the cores / --workers)" if batch
                else "ONNX Runtime intra-op threads (default: all cores; more than the available CPUs are capped "
                     "to them, with a note)")
    add_quiet(o)
    add_verbose(o)


def check_threads(threads: Optional[int], flag: str = "--threads") -> None:
    if threads is not None and threads < 1:
        raise ValueError(f"{flag} must be >= 1, got {threads}")


def check_port(port: Optional[int]) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")


# ---------------------------------------------------------------------------------------------- messages
def one_line(error: Union[BaseException, str]) -> str:
    """An error as the one line every front end shows: the first line of its text, whitespace collapsed; an
    exception with no text is named by its type."""
    text = " ".join(str(error).split("\n")[0].split())
    if not text and isinstance(error, BaseException):
        return type(error).__name__
    return text


def describe_error(exc: BaseException) -> str:
    """`exc` as a user-facing line: the package's errors (ValueError) and OSError as they are, MemoryError as
    'out of memory', anything else named as an internal error."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, (ValueError, OSError)):  # every error class of the package derives from ValueError
        return one_line(exc)
    return f"internal error: {type(exc).__name__}: {one_line(str(exc))}"


def logger(quiet: bool) -> Log:
    """Notes on stderr, or nothing when `quiet`."""
    def log(message: str) -> None:
        if not quiet:
            sys.stderr.write(message + "\n")

    return log


# ---------------------------------------------------------------------------------------------- the bundle
def bundle_dir(models: Optional[Union[str, Path]], log: Optional[Log] = None, *,
               note: bool = True) -> Tuple[Path, bool]:
    """(the bundle directory to use, whether it is the demo bundle): `models`, or the built-in demo bundle (built
    on first use; `log` is told, and given the demo note unless `note` is False). Every front end opens its bundle
    through this one rule."""
    if models is not None:
        return Path(models), False
    from .demo import DEMO_NOTE, demo_bundle_path

    if log is not None and note:
        log(DEMO_NOTE)
    return Path(demo_bundle_path(log=log)), True


def model_shape(models: Optional[Union[str, Path]]) -> Any:
    """What planning needs of the model `models` names (codebook count, sample rate), cheaply: its manifest read
    and checked, no file hashed or loaded; without `models`, the demo bundle's (from its recipe, not built)."""
    if models is None:
        from .demo import DEMO_SHAPE

        return DEMO_SHAPE
    from .bundle import read_manifest_info

    return read_manifest_info(models)


def open_pipeline(models: Optional[Union[str, Path]], threads: Optional[int], *, quiet: bool = False,
                  progress: Optional[bool] = None, log: Optional[Log] = None) -> Any:
    """A ``Pipeline`` on `models` or on the demo bundle; --threads checked and capped to the available CPUs."""
    from .library import available_cpus
    from .pipeline import Pipeline

    check_threads(threads)
    log = log or logger(quiet)
    if threads is not None and threads > available_cpus():
        log(f"note: --threads {threads} capped at {available_cpus()}, the CPUs available to this process")
        threads = available_cpus()
    path, _ = bundle_dir(models, log)
    return Pipeline(path, intra_op_threads=threads, progress=(not quiet) if progress is None else progress)


__all__ = ["add_vamp_arguments", "add_verbose", "add_models", "add_quiet", "add_threads", "add_server",
           "check_threads", "check_port", "one_line", "describe_error", "logger", "bundle_dir",
           "model_shape", "open_pipeline"]
