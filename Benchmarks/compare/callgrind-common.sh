# Shared by callgrind-per-request.sh and callgrind-tls-jwt.sh; sourced after common.sh, from the
# repository root. Runs the gateway under callgrind with one event loop, warms it up, zeroes the
# counters, sends a fixed number of requests and dumps them.

# valgrind 3.19 cannot read the DWARF 5 of Swift 6 binaries ("Possibly corrupted debuginfo file")
# and dies on async main's sigsuspend: measure a copy without debug sections (symbols stay),
# with the shim in valgrind-sigsuspend-shim.c preloaded.
gcc -shared -fPIC -O2 Benchmarks/compare/valgrind-sigsuspend-shim.c -o "$WORK/shim.so"

# Instructions per request of one binary in one mode; prints a table row and keeps the profile
# in PROFILE_DIR when set. The caller defines `load MODE COUNT` (which must fail when a request
# does) and `wait_gateway PORT` (which waits for the gateway under valgrind to answer).
callgrind_measure() { # binary index mode config-file port requests warmup
    local binary=$1 index=$2 mode=$3 config=$4 port=$5 requests=$6 warmup=$7 copy out gateway total
    copy="$WORK/gateway-$index"
    [ -f "$copy" ] || strip --strip-debug -o "$copy" "$binary"
    out="$WORK/callgrind-$index-$mode"
    NIO_SINGLETON_GROUP_LOOP_COUNT=1 LD_PRELOAD="$WORK/shim.so" \
        valgrind --tool=callgrind --callgrind-out-file="$out.%p" \
        "$copy" run --config "$config" 2>"$WORK/valgrind.log" &
    gateway=$!
    PIDS+=($gateway)
    wait_gateway "$port"
    load "$mode" "$warmup"
    callgrind_control -z "$gateway" >/dev/null 2>&1
    load "$mode" "$requests"
    callgrind_control -d "$gateway" >/dev/null 2>&1
    kill "$gateway"; wait "$gateway" 2>/dev/null || true
    total=$(awk '/^summary:/ {print $2}' "$out.$gateway.1")
    echo "| $binary | $mode | $requests | $((total / requests)) |"
    if [ -n "${PROFILE_DIR:-}" ]; then mkdir -p "$PROFILE_DIR"; cp "$out.$gateway.1" "$PROFILE_DIR/callgrind-$index-$mode.out"; fi
}

# The table: every binary of BINARIES in every mode of MODES, against $WORK/gateway.json on GW.
callgrind_table() {
    local index=0 binary mode
    echo "| binary | mode | requests | instructions per request |"
    echo "|---|---|---|---|"
    for binary in "${BINARIES[@]}"; do
        index=$((index + 1))
        for mode in $MODES; do
            callgrind_measure "$binary" "$index" "$mode" "$WORK/gateway.json" "$GW" "$REQUESTS" "$WARMUP"
        done
    done
}
