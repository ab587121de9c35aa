#!/usr/bin/env bash
# Builds the example http-wasm guests in config/examples/wasm/*.c into .wasm modules with the
# Swift toolchain's clang and wasm-ld (no WASI, no libc: -nostdlib, the ABI header and libc.c).
#
#   scripts/build-wasm-examples.sh [OUTPUT_DIR]     # default: config/examples/wasm
#
# CLANG and WASM_LD override the tools (default: /opt/swift/usr/bin/ or PATH). The built
# modules are not committed; the tests run this script into a temporary folder.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/config/examples/wasm"
out="${1:-$src}"
mkdir -p "$out"

find_tool() {
    if [ -x "/opt/swift/usr/bin/$1" ]; then echo "/opt/swift/usr/bin/$1"; else command -v "$1"; fi
}
clang="${CLANG:-$(find_tool clang)}"
wasm_ld="${WASM_LD:-$(find_tool wasm-ld)}"

for source in "$src"/*.c; do
    name="$(basename "$source" .c)"
    [ "$name" = libc ] && continue
    # Linked by clang with wasm-ld named explicitly: no entry point, exports from the
    # export_name attributes, a 64 KiB stack, memory exported as "memory" (wasm-ld's default).
    "$clang" --target=wasm32 -nostdlib -O2 -ffreestanding -Wall -Werror -fuse-ld="$wasm_ld" \
        -Wl,--no-entry -Wl,-z,stack-size=65536 -Wl,--strip-all \
        -o "$out/$name.wasm" "$source" "$src/libc.c"
done
echo "built $(ls "$out"/*.wasm | wc -l) modules into $out"
