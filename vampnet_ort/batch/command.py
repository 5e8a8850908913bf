"""``vampnet-ort batch``: the command-line face of ``vamp_many`` (registered by ``vampnet_ort.cli``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator

from .. import frontend
from .constants import ENGINES, OUTPUT_FORMATS, REPORT_NAME

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
MAX_FAILURES_LISTED = 20


def add_batch_parser(sub: "argparse._SubParsersAction") -> None:
    b = sub.add_parser(
        "batch", help="vamp many files: folders, manifests; resumable; local workers or Ray",
        description="Vamp every INPUT (audio files, folders searched recursively by audio extension, CSV or "
                    "JSON-lines manifests with per-file overrides) into --out, mirroring relative paths. A report "
                    f"OUT/{REPORT_NAME} gets one record per file as it finishes. A rerun skips files whose "
                    "outputs exist. Exit status: 0 all ok, 1 any failed, 130 interrupted (Ctrl-C), 143 / 129 "
                    "stopped by SIGTERM / SIGHUP. Without --models the "
                    "built-in demo bundle is used (random weights: not music). See docs/BATCH.md.")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file, folder, or manifest (.csv, .jsonl)")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    frontend.add_models(b)
    b.add_argument("--format", choices=OUTPUT_FORMATS,
                   help="output format (default: the input's when wav, flac or ogg, else wav)")
    b.add_argument("--workers", type=int, metavar="N", default=1,
                   help="worker processes (local) or actors (ray), each loading the bundle once (default 1)")
    b.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: worker processes on this machine (default); ray: Ray Data (extra 'ray')")
    b.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (e.g. auto or HOST:6379); default: start a local Ray instance")
    b.add_argument("--per-file-seed", action="store_true",
                   help="give each file its own seed derived from --seed and its relative path (default: every "
                        "file uses --seed); the seed used is in the report")
    frontend.add_vamp_arguments(b, batch=True)


STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP to the batch: handled like Ctrl-C (workers stopped, finished files recorded)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``Stopped`` in the main thread (once: a second one is ignored while the batch
    stops its workers and records what finished)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_batch(args: argparse.Namespace) -> int:
    from ..options import options_from_args
    from .core import run_batch

    log = frontend.logger(args.quiet)
    records: list = []
    report = Path(args.out) / REPORT_NAME
    try:
        with _stop_signals():
            records = run_batch(args.inputs, args.out, options_from_args(args), engine=args.engine,
                                workers=args.workers, threads=args.threads, models=args.models,
                                output_format=args.format, output_sample_rate=args.output_sample_rate,
                                per_file_seed=args.per_file_seed, ray_address=args.ray_address,
                                progress=not args.quiet, log=log)
    except Stopped as stop:
        sys.stderr.write(f"vampnet-ort: stopped by {stop.name}; {report} holds a record of every file that "
                         "finished, and a rerun resumes\n")
        return 128 + stop.signum
    except KeyboardInterrupt:
        sys.stderr.write(f"vampnet-ort: interrupted; {report} holds a record of every file that finished, "
                         "and a rerun resumes\n")
        return EXIT_INTERRUPTED
    counts = {status: sum(r.status == status for r in records) for status in ("ok", "error", "skipped")}
    seconds = sum(float(r.duration or 0.0) for r in records if r.status == "ok")
    log(f"batch: {counts['ok']} ok, {counts['error']} failed, {counts['skipped']} skipped "
        f"({seconds:.1f} s of audio vamped); report: {report}")
    failed = [r for r in records if r.status == "error"]
    for record in failed[:MAX_FAILURES_LISTED]:
        log(f"  failed: {record.input}: {record.error}")
    if len(failed) > MAX_FAILURES_LISTED:
        log(f"  ... and {len(failed) - MAX_FAILURES_LISTED} more failures in the report")
    print(report)
    return EXIT_FAILED if counts["error"] else 0
