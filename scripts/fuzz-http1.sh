#!/usr/bin/env bash
# Differential fuzzing of the HTTP/1.1 codec against NIO's llhttp, with libFuzzer: the request
# head parser (the default) or the response decoder.
#
# Usage: scripts/fuzz-http1.sh [request|response] [SECONDS] [extra libFuzzer options]
#   SECONDS defaults to 60. Starts from the checked-in corpus (Tests/HTTP1CodecTests/Corpus for
#   requests, Tests/HTTP1CodecTests/ResponseCorpus for responses, both replayed by `swift test`)
#   and keeps what libFuzzer finds in .build-fuzz/corpus (.build-fuzz/response-corpus); a finding
#   stops the run and is written to .build-fuzz/crash-*. To keep an interesting input as a
#   regression case, copy it into the checked-in corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=request
if [[ "${1:-}" == request || "${1:-}" == response ]]; then
    TARGET=$1
    shift
fi
SECONDS_TO_RUN=${1:-60}
shift || true
SCRATCH=$PWD/.build-fuzz
if [[ $TARGET == response ]]; then
    PRODUCT=FuzzHTTP1Response
    FOUND=$SCRATCH/response-corpus
    SEEDS=$PWD/Tests/HTTP1CodecTests/ResponseCorpus
else
    PRODUCT=FuzzHTTP1RequestHead
    FOUND=$SCRATCH/corpus
    SEEDS=$PWD/Tests/HTTP1CodecTests/Corpus
fi
mkdir -p "$FOUND"
swift build --package-path Fuzz --scratch-path "$SCRATCH/build" -c release \
    -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library --product "$PRODUCT"
BINARY="$SCRATCH/build/release/$PRODUCT"
cd "$SCRATCH"
# Swift's own backtracer would catch a finding's crash first, and libFuzzer would not save the input.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
"$BINARY" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -print_final_stats=1 "$@" "$FOUND" "$SEEDS"
