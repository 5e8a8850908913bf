"""The ``vampnet-ort`` command line: ``export``, ``vamp``, ``batch``, ``info``, ``demo``, ``app``, ``web``.

Errors are one line on stderr (``vampnet-ort: error: ...``) with a non-zero exit status and no traceback; no output
file is left behind by a failed run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from .version import __version__

EXIT_ERROR = 1
EXIT_USAGE = 2
QUANTIZE_CHOICES = ("none", "int8", "int4", "w8")  # = vampnet_ort.export.quantize.PRECISIONS (without importing export)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message: str) -> int:
    first = " ".join(str(message).split("\n")[0].split())
    sys.stderr.write(f"vampnet-ort: error: {first}\n")
    return EXIT_ERROR


def _add_vamp_options(p: argparse.ArgumentParser, batch: bool = False) -> None:
    """The vamp options; `batch`: as ``vampnet-ort batch`` takes them (no --plot, --threads per worker)."""
    g = p.add_argument_group("generation (coarse stage; defaults = upstream app)")
    g.add_argument("--seed", type=int, metavar="N", default=0, help="random seed: the same seed reproduces the output (default 0)")
    g.add_argument("--steps", type=int, metavar="N", default=36, help="coarse decoding steps (default 36, the app; the library uses 12)")
    g.add_argument("--temperature", type=float, metavar="X", default=1.0, help="sampling temperature; 0 = argmax (default 1.0)")
    g.add_argument("--mask-temperature", type=float, metavar="X", default=10.5,
                   help="temperature of the Gumbel noise that picks which tokens to re-mask (default 10.5)")
    g.add_argument("--top-p", type=float, metavar="X", default=0.0, help="nucleus sampling threshold; 0 or 1 = off (default off)")
    g.add_argument("--typical-mass", type=float, metavar="X", default=0.0,
                   help="typical filtering mass; 0 = off (default off: upstream's app shows typical filtering on "
                        "(0.15) but its filter is a no-op, so off reproduces upstream; 0.15 enables a working filter)")
    g.add_argument("--typical-min-tokens", type=int, metavar="N", default=64, help="typical filtering keeps at least this many tokens (default 64)")
    g.add_argument("--sample-cutoff", type=float, metavar="X", default=1.0,
                   help="sample while step/steps <= this, argmax after; < 0 = always argmax (default 1.0)")
    g.add_argument("--variations", type=int, metavar="N", default=1,
                   help="N outputs with seeds SEED..SEED+N-1 from one input in one batched run; "
                        "OUTPUT becomes OUTPUT_0, OUTPUT_1, ... (default 1)")
    g.add_argument("--feedback-steps", type=int, metavar="N", default=1,
                   help="vamp passes: each pass re-vamps the previous output with a fresh mask (default 1)")
    g.add_argument("--time-stretch", type=int, metavar="N", default=1,
                   help="integer factor: insert FACTOR-1 generated frames after every input frame (default 1 = off)")

    c = p.add_argument_group("coarse-to-fine stage (defaults = upstream)")
    c.add_argument("--c2f-steps", type=int, metavar="N", default=2, help="c2f decoding steps (default 2)")
    c.add_argument("--c2f-temperature", type=float, metavar="X", default=1.0, help="c2f sampling temperature (default 1.0)")
    c.add_argument("--c2f-mask-temperature", type=float, metavar="X", default=10.5, help="c2f mask temperature (default 10.5)")
    c.add_argument("--c2f-sample-cutoff", type=float, metavar="X", default=1.0, help="c2f sample cutoff (default 1.0)")
    c.add_argument("--no-c2f", action="store_true", help="skip the c2f stage: keep the input's fine codebooks")

    m = p.add_argument_group("mask (1 = regenerate; defaults = upstream app)")
    m.add_argument("--intensity", type=float, metavar="X", default=1.0,
                   help="probability that a token starts masked, before the prompts below (default 1.0)")
    m.add_argument("--prefix", type=float, default=0.0, metavar="SECONDS", help="keep this many seconds at the start (default 0)")
    m.add_argument("--suffix", type=float, default=0.0, metavar="SECONDS", help="keep this many seconds at the end (default 0)")
    m.add_argument("--period", type=int, metavar="N", default=7,
                   help="periodic prompt: keep every PERIOD-th frame; 0 = off (default 7)")
    m.add_argument("--width", type=int, metavar="N", default=1,
                   help="frames kept at each periodic prompt; an even width keeps width+1 frames, as upstream (default 1)")
    m.add_argument("--no-random-roll", action="store_true",
                   help="do not shift the periodic prompt by a random offset (upstream's app rolls it)")
    m.add_argument("--onset-width", type=int, metavar="N", default=0,
                   help="also keep WIDTH frames before and after each detected onset (librosa); 0 = off (default 0)")
    m.add_argument("--beat-width", type=float, default=0.0, metavar="MS",
                   help="also keep MS milliseconds after each detected beat (librosa beat tracking in place of "
                        "upstream's WaveBeat); 0 = off (default 0)")
    m.add_argument("--downbeats-only", action="store_true",
                   help="beat mask on downbeats only (approximated as every 4th beat)")
    m.add_argument("--dropout", type=float, metavar="X", default=0.0, help="re-mask each kept token with this probability (default 0)")
    m.add_argument("--conditioning-codebooks", type=int, metavar="N", default=0,
                   help="keep codebooks below this index everywhere (default 0)")
    m.add_argument("--upper-codebook-mask", type=int, metavar="N", default=3,
                   help="regenerate every codebook >= this index everywhere (default 3)")

    o = p.add_argument_group("output and runtime")
    if not batch:
        o.add_argument("--plot", metavar="PNG", help="also write a PNG of the input codes, the mask and the output codes")
    o.add_argument("--output-sample-rate", type=int, metavar="HZ",
                   help="resample the output to this rate (default: the codec's rate, 44100 Hz for VampNet)")
    o.add_argument("--threads", type=int, metavar="N",
                   help="ONNX Runtime intra-op threads per worker (default: the cores / --workers)" if batch
                   else "ONNX Runtime intra-op threads (default: all cores; more than the available CPUs are capped "
                        "to them, with a note)")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")
    _add_verbose(o)


def _add_verbose(p: argparse._ActionsContainer) -> None:
    p.add_argument("--verbose", action="store_true",
                   help="also show ONNX Runtime's own log lines (warnings and errors; off by default)")


def _vamp_options(args: argparse.Namespace):
    from .masks import MaskOptions
    from .pipeline import SamplingOptions, VampOptions

    return VampOptions(
        mask=MaskOptions(
            intensity=args.intensity, prefix_s=args.prefix, suffix_s=args.suffix, periodic_period=args.period,
            periodic_width=args.width, periodic_random_roll=not args.no_random_roll, onset_width=args.onset_width,
            beat_width_ms=args.beat_width, beat_downbeats_only=args.downbeats_only, dropout=args.dropout,
            n_conditioning_codebooks=args.conditioning_codebooks, upper_codebook_mask=args.upper_codebook_mask,
        ),
        coarse=SamplingOptions(
            steps=args.steps, temperature=args.temperature, mask_temperature=args.mask_temperature, top_p=args.top_p,
            typical_mass=args.typical_mass, typical_min_tokens=args.typical_min_tokens,
            sample_cutoff=args.sample_cutoff,
        ),
        c2f=SamplingOptions(
            steps=args.c2f_steps, temperature=args.c2f_temperature, mask_temperature=args.c2f_mask_temperature,
            top_p=args.top_p, typical_mass=args.typical_mass, typical_min_tokens=args.typical_min_tokens,
            sample_cutoff=args.c2f_sample_cutoff,
        ),
        use_c2f=not args.no_c2f,
        seed=args.seed,
        variations=args.variations,
        feedback_steps=args.feedback_steps,
        time_stretch=args.time_stretch,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vampnet-ort",
        description="VampNet (masked acoustic token modelling) on ONNX Runtime: export models, vamp audio.",
    )
    parser.add_argument("--version", action="version", version=f"vampnet-ort {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    e = sub.add_parser("export", help="export VampNet/LAC checkpoints (.pth) to a model bundle",
                       description="Export upstream VampNet + LAC checkpoints to a bundle directory "
                                   "(ONNX graphs + vampnet.json). Needs PyTorch to read .pth files.")
    e.add_argument("--codec", required=True, metavar="PTH", help="LAC codec checkpoint (codec.pth)")
    e.add_argument("--coarse", required=True, metavar="PTH", help="coarse VampNet checkpoint (coarse.pth)")
    e.add_argument("--c2f", metavar="PTH", help="coarse-to-fine VampNet checkpoint (c2f.pth); without it vamp keeps the input's fine codebooks")
    e.add_argument("--out", required=True, metavar="DIR", help="bundle directory to create")
    e.add_argument("--logits", action="store_true", help="also write coarse_logits.onnx / c2f_logits.onnx (one forward pass)")
    e.add_argument("--lora-coarse", metavar="PTH", help="LoRA file (lora_A/lora_B tensors) merged into the coarse model")
    e.add_argument("--lora-c2f", metavar="PTH", help="LoRA file merged into the c2f model")
    e.add_argument("--overwrite", action="store_true",
                   help="replace an existing bundle at --out (only a directory holding vampnet.json)")
    _add_verbose(e)
    e.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none",
                   help="weights of the transformer linears: none (float32, default), int8 (about 4x smaller, "
                        "faster on CPUs with integer dot products), int4 (smallest) or w8 (weight-only 8-bit, for the "
                        "browser's WebGPU backend); docs/QUANTIZATION.md")

    v = sub.add_parser("vamp", help="vamp an audio file",
                       description="Regenerate the masked parts of INPUT with VampNet and write OUTPUT "
                                   "(wav, flac or ogg, chosen by the extension). Without --models the built-in "
                                   "demo bundle is used (random weights: not music).")
    v.add_argument("input", metavar="INPUT", help="audio file (wav, flac, ogg, ...; any rate and channel count)")
    v.add_argument("output", metavar="OUTPUT", help="output audio file (.wav, .flac or .ogg)")
    v.add_argument("--models", metavar="DIR", help="bundle directory from 'vampnet-ort export' (default: the demo bundle)")
    _add_vamp_options(v)

    from .batch.command import add_batch_parser

    add_batch_parser(sub)

    i = sub.add_parser("info", help="describe and verify a bundle", description="Print what a bundle holds and verify every file's sha256.")
    i.add_argument("bundle", metavar="DIR", nargs="?", help="bundle directory (default: the demo bundle, built if needed)")
    _add_verbose(i)

    d = sub.add_parser("demo", help="synthesize a clip and vamp it with the demo bundle",
                       description="Write OUT_DIR/input.wav (a synthesized 5 s stereo clip), OUT_DIR/output.wav (its vamp) "
                                   "and OUT_DIR/codes.png. Uses the built-in demo bundle unless --models is given.")
    d.add_argument("out_dir", metavar="OUT_DIR", help="directory to write into (created if missing)")
    d.add_argument("--models", metavar="DIR", help="bundle directory (default: the demo bundle)")
    d.add_argument("--seconds", type=float, metavar="X", default=5.0, help="length of the synthesized clip (default 5)")
    d.add_argument("--seed", type=int, metavar="N", default=0, help="random seed (default 0)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")
    _add_verbose(d)

    a = sub.add_parser("app", help="start the Gradio app (needs the 'app' extra)",
                       description="Serve a Gradio UI with the controls of upstream VampNet's app, and the API "
                                   "endpoint /vamp. Without --models the built-in demo bundle is used (random "
                                   "weights: not music). Needs: pip install 'vampnet-ort[app]'.")
    a.add_argument("--models", metavar="DIR", help="bundle directory (default: the demo bundle)")
    a.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    a.add_argument("--port", type=int, metavar="N", help="port (default: Gradio's, 7860 or the next free one)")
    a.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    a.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime intra-op threads (default: all cores)")

    from . import web_server

    web_server.add_parser(sub)
    return parser


def _log(quiet: bool):
    def log(message: str) -> None:
        if not quiet:
            sys.stderr.write(message + "\n")

    return log


def _open_pipeline(models: Optional[str], threads: Optional[int], quiet: bool):
    from .library import available_cpus
    from .pipeline import Pipeline

    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    log = _log(quiet)
    if threads is not None and threads > available_cpus():
        log(f"note: --threads {threads} capped at {available_cpus()}, the CPUs available to this process")
        threads = available_cpus()
    if models is None:
        from .demo import DEMO_NOTE, demo_bundle_path

        log(DEMO_NOTE)
        return Pipeline(demo_bundle_path(log=log), intra_op_threads=threads, progress=not quiet)
    return Pipeline(models, intra_op_threads=threads, progress=not quiet)


def _cmd_vamp(args: argparse.Namespace) -> int:
    from .bundle import read_manifest
    from .pipeline import check_vamp_paths, output_paths

    options = _vamp_options(args)
    n_codebooks = 14  # the demo bundle's; a bundle's own count is read cheaply, before hashing its files
    if args.models is not None:
        declared = read_manifest(args.models).get("n_codebooks")
        n_codebooks = declared if isinstance(declared, int) and not isinstance(declared, bool) else 14
    options.validate(n_codebooks)
    check_vamp_paths(args.input, output_paths(args.output, args.variations), plot=args.plot,
                     output_sample_rate=args.output_sample_rate)
    started = time.perf_counter()
    pipe = _open_pipeline(args.models, args.threads, args.quiet)
    written, result = pipe.vamp_file(args.input, args.output, options, plot=args.plot,
                                     output_sample_rate=args.output_sample_rate)
    log = _log(args.quiet)
    seconds = result.audio.shape[1] / result.sample_rate
    for path in written:
        print(path)
    if args.plot:
        print(args.plot)
    log(f"vamped {seconds:.2f} s x {len(written)} in {time.perf_counter() - started:.1f} s")
    if result.demo:
        log("(demo bundle: random weights, the output is not music)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .paths import PathError, check_input_file

    inputs = (("--codec", args.codec), ("--coarse", args.coarse), ("--c2f", args.c2f),
              ("--lora-coarse", args.lora_coarse), ("--lora-c2f", args.lora_c2f))
    for flag, value in inputs:
        if value is not None:
            try:
                check_input_file(value, "checkpoint")
            except PathError as exc:
                raise ValueError(f"{flag} {exc}") from None
    try:
        from vampnet_ort.export.bundle import check_target, export_bundle
    except ImportError as exc:
        raise ValueError(f"the exporter is not available in this installation ({exc})") from None
    check_target(args.out, overwrite=args.overwrite, inputs=[v for _, v in inputs if v is not None],
                 overwrite_flag="--overwrite")
    out = export_bundle(args.out, codec=args.codec, coarse=args.coarse, c2f=args.c2f, logits=args.logits,
                        lora_coarse=args.lora_coarse, lora_c2f=args.lora_c2f, overwrite=args.overwrite,
                        quantize=args.quantize)
    print(out)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .bundle import load_bundle

    if args.bundle is None:
        from .demo import demo_bundle_path

        args.bundle = demo_bundle_path(log=_log(False))
    print(load_bundle(args.bundle).describe())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .audio import write_audio
    from .demo import synthesize_clip
    from .pipeline import VampOptions

    if not 0.1 <= args.seconds <= 600:
        raise ValueError(f"--seconds must be between 0.1 and 600, got {args.seconds}")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a directory")
    pipe = _open_pipeline(args.models, None, args.quiet)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip_path = write_audio(out_dir / "input.wav", synthesize_clip(args.seconds, 44100, args.seed), 44100)
    written, result = pipe.vamp_file(clip_path, out_dir / "output.wav", VampOptions(seed=args.seed),
                                     plot=out_dir / "codes.png")
    print(clip_path)
    for path in written:
        print(path)
    print(out_dir / "codes.png")
    if result.demo:
        _log(args.quiet)("(demo bundle: random weights, the output is not music)")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    if args.port is not None and not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.models is not None and not Path(args.models).is_dir():
        raise ValueError(f"--models {args.models}: no such directory")
    from .app import serve

    serve(args.models, host=args.host, port=args.port, share=args.share, threads=args.threads, log=_log(False))
    return 0


def _set_ort_logging(verbose: bool) -> None:
    """ONNX Runtime logs failures itself (coloured ``[E:onnxruntime:...]`` lines) before raising; the CLI reports
    every error in one line of its own, so ORT's log shows only with --verbose (then from warnings up)."""
    import onnxruntime as ort

    ort.set_default_logger_severity(2 if verbose else 4)


def _cmd_web(args: argparse.Namespace) -> int:
    from . import web_server

    return web_server.run(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _set_ort_logging(bool(getattr(args, "verbose", False)))
    from .batch.command import cmd_batch

    handlers = {"vamp": _cmd_vamp, "export": _cmd_export, "info": _cmd_info, "demo": _cmd_demo, "app": _cmd_app,
                "batch": cmd_batch, "web": _cmd_web}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        sys.stderr.write("vampnet-ort: interrupted\n")
        return 130
    except (ValueError, OSError) as exc:  # every error class of the package derives from ValueError
        return _fail(str(exc) or type(exc).__name__)
    except MemoryError:
        return _fail("out of memory (try fewer --variations or shorter audio)")
    except Exception as exc:  # a bug or an unexpected library error: still one line, traceback on request
        if os.environ.get("VAMPNET_ORT_DEBUG"):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return _fail(f"internal error: {type(exc).__name__}: {detail} (set VAMPNET_ORT_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
