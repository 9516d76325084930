#!/usr/bin/env bash
# Builds the native CLI (build/sam) and the C test programs, and the
# WebAssembly module (build/wasm/) when Emscripten is installed.
#   ./build.sh            native release build (+ wasm when emcc is available)
#   ./build.sh wasm       build/wasm/sam_wasm.{mjs,wasm} and the WASM C tests
#   ./build.sh asan       build/asan with address+undefined sanitizers
#   ./build.sh test-deps  only installs what the test suite needs (PyTorch
#                         reference: Debian's python3-torch, Pillow, numpy)
# Missing Debian packages are installed with apt-get when run as root;
# otherwise the exact apt-get line is printed and the build stops.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES=(gcc make libstb-dev libjpeg-dev)
WASM_PACKAGES=(make emscripten)
TEST_PACKAGES=(python3-torch python3-torchvision python3-pil python3-numpy libopenblas0 chromium)
target="${1:-native}"
wanted=("${BUILD_PACKAGES[@]}")
[ "$target" = test-deps ] && wanted=("${TEST_PACKAGES[@]}")
[ "$target" = wasm ] && wanted=("${WASM_PACKAGES[@]}")
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "build.sh: installing ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "build.sh: missing Debian packages; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

jobs=$(nproc 2>/dev/null || echo 2)
case "$target" in
  test-deps) ;;
  native)
    make -s -j"$jobs" BUILD=build
    if command -v emcc >/dev/null; then wasm/build_wasm.sh; else
      echo "build.sh: emcc not found, skipping the WASM build (./build.sh wasm installs it)" >&2; fi ;;
  wasm) wasm/build_wasm.sh ;;
  asan) make -s -j"$jobs" BUILD=build/asan SANITIZE=1 all fuzz ;;
  *) echo "usage: ./build.sh [native|wasm|asan|test-deps]" >&2; exit 2 ;;
esac
