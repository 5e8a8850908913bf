#!/usr/bin/env bash
# The README's test command: sets up .venv with vampnet-ort (built from this checkout) and the test
# dependencies, then runs the whole test suite against the installed package. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A failed native build must fail here, not fall back to the pure-Python package (docs/DEVELOPING.md).
export VAMPNET_REQUIRE_NATIVE=1
venv="$(bash scripts/setup_venv.sh test,export)"
bash scripts/install_browser.sh   # chromium + chromium-driver (apt) for the app's browser tests
# Run pytest through its entry point (not `python -m pytest`) so the source tree is not put on sys.path:
# the tests import the installed package.
exec "$venv/bin/pytest" -q tests "$@"
