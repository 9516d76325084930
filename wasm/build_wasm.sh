#!/usr/bin/env bash
# Builds build/wasm/ with Emscripten (called by build.sh; see wasm/Makefile)
# and prints the module's size.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"
make -s -j"$(nproc 2>/dev/null || echo 2)" -f wasm/Makefile
raw=$(stat -c %s build/wasm/sam_wasm.wasm)
gz=$(gzip -9 -c build/wasm/sam_wasm.wasm | wc -c)
echo "build/wasm/sam_wasm.wasm: $raw bytes, $gz gzipped" >&2
