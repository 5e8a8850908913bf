"""How ``vampnet-ort app`` runs as a long-lived server: work that stops when it is cancelled, exact integers from
the UI and the API, files deleted after their lifetime, and signals that end the server cleanly.

- ``call_cancellable``: runs a blocking call in a worker thread inside ``pipeline.cancellable``; when the awaiting
  task is cancelled (Gradio's cancel, a HARP cancel, a client that went away) the token is cancelled, so ONNX
  Runtime stops the model run in flight and the CPU is freed, instead of the job running on after its queue slot
  was released. The task ends once the worker thread has stopped, so the next job never shares the CPU with it.
- ``exact_integer``: an integer control (the seed above all) from an int, a string of digits or an integral float
  below 2^53, never through a float: seeds up to 2^63 - 1 are exact, and an out-of-range one is named as given.
- ``JobFiles``: a folder of per-job folders, each deleted ``lifetime`` seconds after it was made (a sweeper
  thread), and the whole folder at exit.
- ``stop_on_signals``: SIGTERM and SIGHUP end the server like Ctrl-C does (KeyboardInterrupt in the main thread), so
  Gradio closes, its cache is deleted and the work folder removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

from .pipeline import CancelToken, cancellable

T = TypeVar("T")
STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)
CANCEL_WAIT_S = 60.0  # how long a cancelled task waits for its worker thread to stop
DEFAULT_FILE_LIFETIME_S = 3600.0


async def call_cancellable(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, inside ``cancellable``; cancelling the awaiting task cancels the work."""
    token = CancelToken()

    def work() -> T:
        with cancellable(token):
            return fn(*args)

    # the caller's context variables go along (as asyncio.to_thread does): Gradio finds the job's gr.Progress there
    context = contextvars.copy_context()
    future = asyncio.get_running_loop().run_in_executor(None, context.run, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        token.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait({future}, timeout=CANCEL_WAIT_S)  # the CPU is free once the thread has returned
        raise


def exact_integer(value: Any, name: str) -> int:
    """`value` as an exact int: an int, a string of an integer, or an integral float of at most 2^53 in magnitude
    (where every integer is exact). Never via float, so 2^63 - 1 stays 2^63 - 1."""
    label = name.replace("_", " ")
    if isinstance(value, bool):
        raise ValueError(f"{label} must be a whole number, got {value}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if len(text) > 40:
            raise ValueError(f"{label} must be a whole number of at most 40 digits, got {value[:40]!r}...")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{label} must be a whole number, got {value!r}") from None
        value = number
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{label} must be a whole number, got {value}")
        if abs(value) > 2**53:
            raise ValueError(f"{label} {value:.17g} is too large to be exact as a number; give it as a string of "
                             "digits")
        return int(value)
    raise ValueError(f"{label} must be a whole number, got {type(value).__name__}")


class JobFiles:
    """Per-job folders under one work folder, each deleted `lifetime` seconds after it was made."""

    def __init__(self, lifetime: float = DEFAULT_FILE_LIFETIME_S, root: Optional[Path] = None) -> None:
        if not lifetime > 0:
            raise ValueError(f"the file lifetime must be > 0 seconds, got {lifetime}")
        self.lifetime = float(lifetime)
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="vampnet-ort-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._sweeper: Optional[threading.Thread] = None

    def new(self) -> Path:
        """A fresh folder for one job's files."""
        path = self.root / uuid.uuid4().hex
        path.mkdir()
        return path

    def sweep(self) -> None:
        """Delete the job folders older than the lifetime."""
        now = time.time()
        try:
            entries = list(self.root.iterdir())
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir() and now - entry.stat().st_mtime > self.lifetime:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                pass

    def start_sweeping(self) -> None:
        """Sweep in a daemon thread, every min(lifetime, 60) seconds."""
        if self._sweeper is not None:
            return
        interval = max(0.5, min(self.lifetime, 60.0))

        def loop() -> None:
            while not self._stop.wait(interval):
                self.sweep()

        self._sweeper = threading.Thread(target=loop, name="vampnet-app-sweeper", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        """Stop sweeping and delete the whole work folder."""
        self._stop.set()
        shutil.rmtree(self.root, ignore_errors=True)


def gradio_cache_schedule(lifetime: float) -> tuple:
    """``gr.Blocks(delete_cache=...)``: (every how many seconds, older than how many seconds), whole seconds."""
    age = max(1, int(math.ceil(lifetime)))
    return (max(1, min(age, 60)), age)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block (main thread only), SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupt) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
