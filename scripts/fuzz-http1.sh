#!/usr/bin/env bash
# Differential fuzzing of the HTTP/1.1 request head parser against NIO's llhttp, with libFuzzer.
#
# Usage: scripts/fuzz-http1.sh [SECONDS] [extra libFuzzer options]
#   SECONDS defaults to 60. Starts from the checked-in corpus (Tests/HTTP1CodecTests/Corpus,
#   which `swift test` replays) and keeps what libFuzzer finds in .build-fuzz/corpus; a finding
#   stops the run and is written to .build-fuzz/crash-*. To keep an interesting input as a
#   regression case, copy it into the checked-in corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
shift || true
SCRATCH=$PWD/.build-fuzz
mkdir -p "$SCRATCH/corpus"
swift build --package-path Fuzz --scratch-path "$SCRATCH/build" -c release \
    -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library --product FuzzHTTP1RequestHead
BINARY="$SCRATCH/build/release/FuzzHTTP1RequestHead"
cd "$SCRATCH"
"$BINARY" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -print_final_stats=1 "$@" \
    "$SCRATCH/corpus" "$OLDPWD/Tests/HTTP1CodecTests/Corpus"
