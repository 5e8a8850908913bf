#!/usr/bin/env bash
# Create (once) and update the project's virtual environment, then install vampnet-ort into it.
#   scripts/setup_venv.sh [EXTRAS]      e.g. scripts/setup_venv.sh test,export
# VAMPNET_VENV picks the venv directory (default .venv); PYTHON the interpreter (default python3).
# PyTorch is needed by no extra: .pth checkpoints are read without it. The tests use it as an independent oracle
# (torch.load / torch.save) where it is installed, so with the "test" extra it is installed too, pinned to the
# CPU build 2.13.0 (any other spec would pull a multi-GB CUDA build). VAMPNET_NO_TORCH=1 leaves it out: the
# suite then skips only the tests that need torch as the oracle.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
extras="${1:-}"
venv="${VAMPNET_VENV:-.venv}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >&2
case ",$extras," in
  *,test,*) [ -n "${VAMPNET_NO_TORCH:-}" ] || "$venv/bin/python" -m pip install -q "torch==2.13.0" >&2 ;;
esac
spec="."
[ -n "$extras" ] && spec=".[$extras]"
"$venv/bin/python" -m pip install -q "$spec" >&2
echo "$venv"
