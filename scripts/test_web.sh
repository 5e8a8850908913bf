#!/usr/bin/env bash
# The web app's tests (docs/WEB.md), as CI runs them: Node + npm + chromium from Debian, `npm ci` (lockfile),
# the package reinstalled so that it ships the onnxruntime-web files, then
#   1. the JS unit tests (node --test) against vectors the Python implementation writes now,
#   2. the demo bundle in onnxruntime-web under Node against the Python pipeline, and the int8 codec decoder
#      (vampnet.DynamicQuantizeIm2Col's reference function) against native ORT with the op library,
#   3. headless chromium (puppeteer-core) on the page served by `vampnet-ort web`: a vamp through the UI and
#      through window.vampnet, codes compared with the Python pipeline's; screenshots in $WEB_ARTIFACTS
#      (default test-artifacts/web).
#   4. WebGPU on chromium's SwiftShader adapter (CPU-emulated: correctness only): every graph of the demo bundle and
#      of a w8 and an int4 golden export with executionProviders ['webgpu'] on both onnxruntime-web WebGPU builds
#      against ['wasm'] (tests/web/webgpu_graphs.mjs), then the page's UI vamp on WebGPU (codes equal Python's).
#      VAMPNET_WEB_WEBGPU=0 skips this part (~15-25 min on a loaded 2-core machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)
export PUPPETEER_SKIP_DOWNLOAD=1 ONNXRUNTIME_NODE_INSTALL=skip
if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then echo "test_web.sh: needs nodejs, npm and chromium (apt-get install nodejs npm chromium)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm chromium >/dev/null
fi
npm ci --no-audit --no-fund --loglevel=error
venv="$(bash scripts/setup_venv.sh test)"   # reinstall: setup.py copies node_modules' onnxruntime-web files in
work="$(mktemp -d)"
artifacts="${WEB_ARTIFACTS:-test-artifacts/web}"
mkdir -p "$artifacts"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$venv/bin/python" tests/web/make_vectors.py "$work" >/dev/null
"$venv/bin/python" tests/web/make_pipeline_vectors.py "$work" >/dev/null
"$venv/bin/python" tests/web/make_codec_int8_vectors.py "$work" >/dev/null
VAMPNET_WEB_VECTORS="$work" node --test tests/web/*.test.mjs

bundle="$("$venv/bin/python" -c 'from vampnet_ort.demo import demo_bundle_path; print(demo_bundle_path())')"
"$venv/bin/python" tests/web/make_browser_vectors.py "$bundle" "$work" >/dev/null
"$venv/bin/vampnet-ort" web --port 0 -q > "$work/url" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$work/url" ] && break; sleep 0.2; done
url="$(head -n1 "$work/url")"
[ -n "$url" ] || { echo "vampnet-ort web did not start: $(cat "$work/server.err")" >&2; exit 1; }
node tests/web/browser_run.mjs "$url" "$work/browser_vectors.json" "$artifacts"
kill "$server_pid"; server_pid=""

# a corrupted bundle file: refused with a message on the page (sha256 check before any session)
cp -r "$bundle" "$work/corrupt"
printf '\x42' | dd of="$work/corrupt/c2f.onnx.data" bs=1 seek=1000 count=1 conv=notrunc status=none
: > "$work/url"
"$venv/bin/vampnet-ort" web --models "$work/corrupt" --port 0 -q > "$work/url" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$work/url" ] && break; sleep 0.2; done
node tests/web/browser_run.mjs --expect-error "c2f.onnx.data does not match its sha256" "$(head -n1 "$work/url")" "$artifacts"
kill "$server_pid"; server_pid=""

if [ "${VAMPNET_WEB_WEBGPU:-1}" != 0 ]; then
  for q in w8 int4; do
    "$venv/bin/vampnet-ort" export --codec tests/golden/codec.pth --coarse tests/golden/coarse.pth \
      --c2f tests/golden/c2f.pth --quantize "$q" --out "$work/golden_$q" >/dev/null
  done
  node tests/web/webgpu_graphs.mjs "$artifacts" "$bundle" "$work/golden_w8" "$work/golden_int4#coarse,c2f"
  : > "$work/url"
  "$venv/bin/vampnet-ort" web --port 0 -q > "$work/url" 2> "$work/server.err" &
  server_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/url" ] && break; sleep 0.2; done
  node tests/web/browser_run.mjs --backend webgpu "$(head -n1 "$work/url")" "$work/browser_vectors.json" "$artifacts"
  kill "$server_pid"; server_pid=""
fi
echo "test_web.sh: passed in $(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s; screenshots in $artifacts"
