#!/usr/bin/env bash
# The README's main command: installs vampnet-ort into .venv, synthesizes a 5 s stereo clip and vamps it with the
# embedded demo bundle (seeded random weights, built and cached on first use: its output is NOT music).
# Writes demo-out/input.wav, demo-out/output.wav and demo-out/codes.png (or the directory given as $1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$(bash scripts/setup_venv.sh plot)"
exec "$venv/bin/vampnet-ort" demo "${1:-demo-out}"
