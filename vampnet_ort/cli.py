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

from . import frontend
from .version import __version__

EXIT_ERROR = 1
EXIT_USAGE = 2
QUANTIZE_CHOICES = ("none", "int8", "int4", "w8")  # = vampnet_ort.export.quantize.PRECISIONS (without importing export)
HF_DEFAULT_REPO = "hugggof/vampnet"  # = vampnet_ort.export.hub.DEFAULT_REPO (without importing export)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"vampnet-ort: error: {frontend.one_line(message)}\n")
    return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vampnet-ort",
        description="VampNet (masked acoustic token modelling) on ONNX Runtime: export models, vamp audio.",
    )
    parser.add_argument("--version", action="version", version=f"vampnet-ort {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    e = sub.add_parser("export", help="export VampNet/LAC checkpoints (.pth, local or from the Hugging Face Hub) to a model bundle",
                       description="Export upstream VampNet + LAC checkpoints to a bundle directory "
                                   "(ONNX graphs + vampnet.json): local .pth files (--codec/--coarse/--c2f), or the "
                                   f"released weights downloaded from the Hugging Face Hub (--hf, default {HF_DEFAULT_REPO}). "
                                   "No PyTorch needed: .pth files are read by a restricted reader that runs no code.")
    src = e.add_argument_group("checkpoints: local files")
    src.add_argument("--codec", metavar="PTH", help="LAC codec checkpoint (codec.pth)")
    src.add_argument("--coarse", metavar="PTH", help="coarse VampNet checkpoint (coarse.pth)")
    src.add_argument("--c2f", metavar="PTH", help="coarse-to-fine VampNet checkpoint (c2f.pth); without it vamp keeps the input's fine codebooks")
    hub = e.add_argument_group("checkpoints: the Hugging Face Hub (huggingface_hub's cache, HF_HOME, HF_HUB_OFFLINE, HF_TOKEN apply)")
    hub.add_argument("--hf", nargs="?", const=HF_DEFAULT_REPO, metavar="REPO",
                     help=f"download codec.pth, coarse.pth and c2f.pth from this model repository (default {HF_DEFAULT_REPO})")
    hub.add_argument("--revision", metavar="REV", help="branch, tag or commit of the --hf repository (default main)")
    hub.add_argument("--hf-model", metavar="NAME",
                     help="a fine-tune of the repository (loras/NAME/coarse.pth + c2f.pth) in place of the base "
                          "model; 'default' = the base model (default)")
    hub.add_argument("--list", action="store_true", help="print the fine-tunes of the --hf repository and exit")
    e.add_argument("--out", metavar="DIR", help="bundle directory to create")
    e.add_argument("--logits", action="store_true", help="also write coarse_logits.onnx / c2f_logits.onnx (one forward pass)")
    e.add_argument("--lora-coarse", metavar="PTH", help="LoRA file (lora_A/lora_B tensors) merged into the coarse model")
    e.add_argument("--lora-c2f", metavar="PTH", help="LoRA file merged into the c2f model")
    e.add_argument("--overwrite", action="store_true",
                   help="replace an existing bundle at --out (only a directory holding vampnet.json)")
    frontend.add_verbose(e)
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
    frontend.add_models(v)
    frontend.add_vamp_arguments(v)

    from .batch.command import add_batch_parser

    add_batch_parser(sub)

    i = sub.add_parser("info", help="describe and verify a bundle", description="Print what a bundle holds and verify every file's sha256.")
    i.add_argument("bundle", metavar="DIR", nargs="?", help="bundle directory (default: the demo bundle, built if needed)")
    frontend.add_verbose(i)

    d = sub.add_parser("demo", help="synthesize a clip and vamp it with the demo bundle",
                       description="Write OUT_DIR/input.wav (a synthesized 5 s stereo clip), OUT_DIR/output.wav (its vamp) "
                                   "and OUT_DIR/codes.png. Uses the built-in demo bundle unless --models is given.")
    d.add_argument("out_dir", metavar="OUT_DIR", help="directory to write into (created if missing)")
    frontend.add_models(d, "bundle directory (default: the demo bundle)")
    d.add_argument("--seconds", type=float, metavar="X", default=5.0, help="length of the synthesized clip (default 5)")
    d.add_argument("--seed", type=int, metavar="N", default=0, help="random seed (default 0)")
    frontend.add_quiet(d)
    frontend.add_verbose(d)

    a = sub.add_parser("app", help="start the Gradio app (needs the 'app' extra)",
                       description="Serve a Gradio UI with the controls of upstream VampNet's app, the API "
                                   "endpoints /vamp and /vamp_1 (upstream's Space API) and HARP's endpoints (use "
                                   "it from a DAW). Without --models the built-in demo bundle is used (random "
                                   "weights: not music). Needs: pip install 'vampnet-ort[app]'.")
    a.add_argument("--models", metavar="DIR", action="append",
                   help="a bundle directory, or a folder of bundle directories; repeat for more models (listed in "
                        "this order; each loads when first chosen). Default: the demo bundle")
    frontend.add_server(a, port_help="port (default: Gradio's, 7860 or the next free one)")
    a.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    a.add_argument("--file-lifetime", type=float, metavar="SECONDS", default=3600.0,
                   help="delete uploads and outputs this long after they were made (default 3600)")
    frontend.add_threads(a)

    from . import web_server

    web_server.add_parser(sub)
    return parser


def _cmd_vamp(args: argparse.Namespace) -> int:
    from .options import options_from_args
    from .pipeline import plan_file

    log = frontend.logger(args.quiet)
    options = options_from_args(args)  # validated once, as built
    # every cheap check once, before the bundle is hashed and loaded (or the demo bundle built)
    job = plan_file(frontend.model_shape(args.models), args.input, args.output, options, plot=args.plot,
                    output_sample_rate=args.output_sample_rate)
    frontend.check_threads(args.threads)
    started = time.perf_counter()
    pipe = frontend.open_pipeline(args.models, args.threads, quiet=args.quiet, log=log)
    written, result = pipe.run(job)
    seconds = result.audio.shape[1] / result.sample_rate
    for path in written:
        print(path)
    if args.plot:
        print(args.plot)
    log(f"vamped {seconds:.2f} s x {len(written)} in {time.perf_counter() - started:.1f} s")
    if result.demo:
        log("(demo bundle: random weights, the output is not music)")
    return 0


def _check_export_sources(args: argparse.Namespace) -> None:
    """The checkpoint options fit together: local files xor --hf; --revision/--hf-model/--list only with --hf."""
    local = [flag for flag, value in (("--codec", args.codec), ("--coarse", args.coarse), ("--c2f", args.c2f))
             if value is not None]
    if args.hf is not None:
        if local:
            raise ValueError(f"--hf downloads codec, coarse and c2f: leave out {', '.join(local)}")
        if args.list:
            others = [flag for flag, value in (("--out", args.out), ("--hf-model", args.hf_model),
                                               ("--lora-coarse", args.lora_coarse), ("--lora-c2f", args.lora_c2f))
                      if value is not None]
            if others:
                raise ValueError(f"--list only prints the fine-tunes: leave out {', '.join(others)}")
        elif args.out is None:
            raise ValueError("--out DIR is required (the bundle directory to create)")
        return
    hub_only = [flag for flag, value in (("--revision", args.revision), ("--hf-model", args.hf_model),
                                         ("--list", args.list or None)) if value is not None]
    if hub_only:
        raise ValueError(f"{', '.join(hub_only)} need --hf (a Hugging Face Hub repository)")
    missing = [flag for flag, value in (("--codec", args.codec), ("--coarse", args.coarse), ("--out", args.out))
               if value is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} required (or --hf [REPO] to download the released checkpoints)")


def _cmd_export(args: argparse.Namespace) -> int:
    from .paths import PathError, check_input_file

    _check_export_sources(args)
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
        from vampnet_ort.export.hub import list_fine_tunes
    except ImportError as exc:
        raise ValueError(f"the exporter is not available in this installation ({exc})") from None
    if args.list:
        for name in list_fine_tunes(args.hf, args.revision, log=frontend.logger(False)):
            print(name)
        return 0
    check_target(args.out, overwrite=args.overwrite, inputs=[v for _, v in inputs if v is not None],
                 overwrite_flag="--overwrite")
    out = export_bundle(args.out, codec=args.codec, coarse=args.coarse, c2f=args.c2f, logits=args.logits,
                        lora_coarse=args.lora_coarse, lora_c2f=args.lora_c2f, overwrite=args.overwrite,
                        quantize=args.quantize, hf=args.hf, hf_model=args.hf_model, hf_revision=args.revision,
                        hf_log=frontend.logger(False))
    print(out)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .bundle import load_bundle

    if args.bundle is None:
        args.bundle, _ = frontend.bundle_dir(None, frontend.logger(False), note=False)
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
    pipe = frontend.open_pipeline(args.models, None, quiet=args.quiet)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip_path = write_audio(out_dir / "input.wav", synthesize_clip(args.seconds, 44100, args.seed), 44100)
    written, result = pipe.vamp_file(clip_path, out_dir / "output.wav", VampOptions(seed=args.seed),
                                     plot=out_dir / "codes.png")
    print(clip_path)
    for path in written:
        print(path)
    print(out_dir / "codes.png")
    if result.demo:
        frontend.logger(args.quiet)("(demo bundle: random weights, the output is not music)")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    frontend.check_port(args.port)
    frontend.check_threads(args.threads)
    for models in args.models or ():
        if not Path(models).is_dir():
            raise ValueError(f"--models {models}: no such directory")
    from .app import serve

    if not 1 <= args.file_lifetime <= 30 * 86400:
        raise ValueError(f"--file-lifetime must be between 1 and 2592000 seconds, got {args.file_lifetime:g}")
    serve(args.models, host=args.host, port=args.port, share=args.share, threads=args.threads,
          log=frontend.logger(False), file_lifetime=args.file_lifetime)
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
        return _fail(f"{frontend.describe_error(exc)} (set VAMPNET_ORT_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
