#!/usr/bin/env bash
# Regenerates Plugins/FluxerRelay/Protobuf/client.pb.swift, the Swift messages of the relay's
# Protobuf format, from Plugins/FluxerRelay/Protobuf/client.proto (Centrifugal's client.proto,
# checked in with where it came from). The generated file is committed: the build needs neither
# protoc nor the generator, only the SwiftProtobuf runtime library.
#
# Usage: scripts/generate-relay-protobuf.sh
#   Needs protoc (Debian: protobuf-compiler; made with libprotoc 3.21.12). PROTOC_GEN_SWIFT names
#   the generator; without it, protoc-gen-swift on PATH, else it is built from swift-protobuf
#   1.39.0 (the version of the runtime in Package.swift) cloned from SWIFT_PROTOBUF_GIT
#   (default https://github.com/apple/swift-protobuf.git) into a scratch folder outside the repo.
#   The generator's version must match the runtime's: SwiftProtobuf checks it at compile time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VERSION=1.39.0
DIR=Plugins/FluxerRelay/Protobuf

command -v protoc >/dev/null || { echo "protoc not found (Debian: apt-get install protobuf-compiler)" >&2; exit 1; }
GENERATOR=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}
if [ -z "$GENERATOR" ]; then
    SCRATCH=$(mktemp -d)
    trap 'rm -rf "$SCRATCH"' EXIT
    git clone --quiet --branch "$VERSION" --depth 1 "${SWIFT_PROTOBUF_GIT:-https://github.com/apple/swift-protobuf.git}" "$SCRATCH/swift-protobuf"
    (cd "$SCRATCH/swift-protobuf" && swift build -c release --product protoc-gen-swift >&2)
    GENERATOR=$SCRATCH/swift-protobuf/.build/release/protoc-gen-swift
fi
reported=$("$GENERATOR" --version)
case "$reported" in
*"$VERSION"*) ;;
*) echo "protoc-gen-swift is '$reported'; the runtime in Package.swift is $VERSION" >&2; exit 1 ;;
esac

OUT=$(mktemp -d)
protoc --plugin=protoc-gen-swift="$GENERATOR" --swift_opt=Visibility=Internal --swift_out="$OUT" \
    -I "$DIR" "$DIR/client.proto"
{
    echo "// Generated from client.proto by scripts/generate-relay-protobuf.sh"
    echo "// ($(protoc --version), $reported); regenerate with it, do not edit."
    cat "$OUT/client.pb.swift"
} >"$ROOT/$DIR/client.pb.swift"
rm -rf "$OUT"
echo "wrote $DIR/client.pb.swift" >&2
