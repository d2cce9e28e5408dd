#!/usr/bin/env bash
# Switchyard benchmark harness: one command, three targets side by side.
#
#   bash bench/run.sh
#
# Builds switchyard, switchyard-mock, floor-proxy and switchyard-loadgen in release, installs wrk if
# it is missing, starts the mock, the floor proxy and the gateway on fixed loopback ports, and hands
# over to bench/harness.py, which smoke-tests, warms up and measures every target in interleaved rounds
# (wrk for the request rates; switchyard-loadgen, via bench/scale.py, for the streams and idle connections).
# The Markdown table goes to stdout and, with all raw output, to bench/results/<timestamp>/.
# Everything started here is stopped on exit (trap EXIT). All traffic stays on 127.0.0.1.
#
# Environment knobs (defaults in brackets):
#   BENCH_SECONDS [7]            seconds per measured run (integer)
#   BENCH_ROUNDS [3]             interleaved rounds; the table shows medians over rounds
#   BENCH_WARMUP_SECONDS [2]     warm-up per target and shape (JSON, SSE) at c=32, not recorded
#   BENCH_MOCK_LATENCY_MS [0]    artificial latency of the mock upstream
#   BENCH_SCENARIOS              [json-c1 json-c32 sse-c32 sse-c1 gov-json-c1 gov-json-c32 xlate-json-c32
#                                 slow20-json-c256 slow20-sse-c256]; add cache-hit-c1 for a response
#                                cache hit (switchyard) against the floor's round trip (the plugin is
#                                then on for every switchyard run; requests without a cache key skip it)
#   BENCH_STREAMS [512]          concurrent SSE streams, a chunk every 20 ms (0 = skip)
#   BENCH_IDLE_CONNS [2000]      idle keep-alive connections held open, RSS they add (0 = skip)
#   BENCH_SOAK_SECONDS [600]     c=32 JSON soak with RSS samples (0 = skip)
#   BENCH_QUICK [0]              1: one round of 5 s, 1 s warm-up, a 60 s soak (the whole table in
#                                about 6 minutes plus the build)
#   BENCH_PIN [1]                1: mock, wrk and switchyard-loadgen on CPU 0, proxies on CPU 1
#                                (taskset); 0: no pinning
#   BENCH_PORT_BASE [18700]      mock = base, floor-proxy = base+1, switchyard = base+2
#   BENCH_SKIP_BUILD [0]         1: use the binaries already in target/release
#   BENCH_SKIP_SWITCHYARD [0]    1: measure only direct and floor-proxy
#   BENCH_QUIET_WAIT_SECONDS [120]  before each run, wait up to this long while other processes
#                                use more than BENCH_QUIET_THRESHOLD [0.05] of the CPUs (shared machines)
#   BENCH_RETRIES [2]            re-measure a run disturbed by other processes up to this many times
#   BENCH_MOCK_BIN, BENCH_FLOOR_BIN, BENCH_SWITCHYARD_BIN, BENCH_LOADGEN_BIN
#                                use other binaries than target/release/*
#
# The soft limit on open files is raised to the hard one (ulimit -n) for everything started here:
# 2,000 idle connections need more than the common default of 1,024, in the load generator and in
# the proxies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
if [[ "${BENCH_QUICK:-0}" == "1" ]]; then
    : "${BENCH_SECONDS:=5}" "${BENCH_ROUNDS:=1}" "${BENCH_WARMUP_SECONDS:=1}" "${BENCH_SOAK_SECONDS:=60}"
fi
SECONDS_PER_RUN="${BENCH_SECONDS:-7}"
ROUNDS="${BENCH_ROUNDS:-3}"
WARMUP="${BENCH_WARMUP_SECONDS:-2}"
MOCK_LATENCY_MS="${BENCH_MOCK_LATENCY_MS:-0}"
SCENARIOS="${BENCH_SCENARIOS:-json-c1 json-c32 sse-c32 sse-c1 gov-json-c1 gov-json-c32 xlate-json-c32 slow20-json-c256 slow20-sse-c256}"
STREAMS="${BENCH_STREAMS:-512}"
IDLE_CONNS="${BENCH_IDLE_CONNS:-2000}"
SOAK_SECONDS="${BENCH_SOAK_SECONDS:-600}"
PIN="${BENCH_PIN:-1}"
PORT_BASE="${BENCH_PORT_BASE:-18700}"
SKIP_BUILD="${BENCH_SKIP_BUILD:-0}"
SKIP_SWITCHYARD="${BENCH_SKIP_SWITCHYARD:-0}"
QUIET_WAIT="${BENCH_QUIET_WAIT_SECONDS:-120}"
QUIET_THRESHOLD="${BENCH_QUIET_THRESHOLD:-0.05}"
RETRIES="${BENCH_RETRIES:-2}"

MOCK_PORT=$PORT_BASE
FLOOR_PORT=$((PORT_BASE + 1))
GW_PORT=$((PORT_BASE + 2))
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
MOCK_BIN="${BENCH_MOCK_BIN:-$BIN/switchyard-mock}"
FLOOR_BIN="${BENCH_FLOOR_BIN:-$BIN/floor-proxy}"
GW_BIN="${BENCH_SWITCHYARD_BIN:-$BIN/switchyard}"
export BENCH_LOADGEN_BIN="${BENCH_LOADGEN_BIN:-$BIN/switchyard-loadgen}"
HOST=127.0.0.1

# Loopback only: no proxy variable may reroute curl or Python.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'

STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="$ROOT/bench/results/$STAMP"
mkdir -p "$OUT"
LOG="$OUT/run.log"

log() { echo "[bench] $*" | tee -a "$LOG" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ cleanup
PIDS=()
APP_DIR=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$APP_DIR" && -d "$APP_DIR" ]]; then
        rm -rf "$APP_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ checks
[[ "$SECONDS_PER_RUN" =~ ^[0-9]+$ && "$SECONDS_PER_RUN" -ge 1 ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || die "BENCH_ROUNDS must be a positive integer"
[[ "$MOCK_LATENCY_MS" =~ ^[0-9]+$ ]] || die "BENCH_MOCK_LATENCY_MS must be a non-negative integer"
command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"
NOFILE_HARD="$(ulimit -Hn)"
[[ "$NOFILE_HARD" == unlimited ]] && NOFILE_HARD=1048576
ulimit -n "$NOFILE_HARD" 2>/dev/null || true

NCPU="$(nproc)"
if [[ "$PIN" == "1" && "$NCPU" -lt 2 ]]; then
    log "only $NCPU CPU: pinning disabled"
    PIN=0
fi
if [[ "$PIN" == "1" ]]; then
    PIN_LOAD=(taskset -c 0)   # mock, wrk and switchyard-loadgen (scale.py pins the latter two)
    PIN_PROXY=(taskset -c 1)  # floor-proxy and switchyard
    WRK_CPU=0
    PROXY_CPU=1
    PINNING="mock + wrk + switchyard-loadgen on CPU 0, floor-proxy / switchyard on CPU 1 (taskset)"
else
    PIN_LOAD=()
    PIN_PROXY=()
    WRK_CPU=""
    PROXY_CPU=""
    PINNING="none (all processes share all $NCPU CPUs)"
fi

# ------------------------------------------------------------------ build
GW_SKIP=""
if [[ "$SKIP_BUILD" != "1" ]]; then
    log "building release binaries (log: $OUT/build.log)"
    if [[ "$SKIP_SWITCHYARD" == "1" ]]; then
        cargo build --release -p switchyard-mock -p floor-proxy -p switchyard-loadgen >"$OUT/build.log" 2>&1 \
            || die "build failed, see $OUT/build.log"
    elif ! cargo build --release -p switchyard -p switchyard-mock -p floor-proxy -p switchyard-loadgen \
        >"$OUT/build.log" 2>&1; then
        log "the combined build failed; retrying without switchyard (see $OUT/build.log)"
        cargo build --release -p switchyard-mock -p floor-proxy -p switchyard-loadgen >>"$OUT/build.log" 2>&1 \
            || die "build of switchyard-mock / floor-proxy / switchyard-loadgen failed, see $OUT/build.log"
        GW_SKIP="switchyard did not build"
    fi
fi
[[ -x "$MOCK_BIN" ]] || die "missing $MOCK_BIN"
[[ -x "$FLOOR_BIN" ]] || die "missing $FLOOR_BIN"
if [[ "$STREAMS" != "0" || "$IDLE_CONNS" != "0" ]]; then
    [[ -x "$BENCH_LOADGEN_BIN" ]] || die "missing $BENCH_LOADGEN_BIN (BENCH_STREAMS=0 BENCH_IDLE_CONNS=0 skip it)"
fi
if [[ "$SKIP_SWITCHYARD" == "1" ]]; then
    GW_SKIP="skipped by BENCH_SKIP_SWITCHYARD=1"
elif [[ -z "$GW_SKIP" && ! -x "$GW_BIN" ]]; then
    GW_SKIP="no switchyard binary"
fi

# ------------------------------------------------------------------ wrk
if ! command -v wrk >/dev/null; then
    log "installing wrk with apt"
    if ! apt-get install -y -qq wrk >>"$LOG" 2>&1; then
        apt-get update -qq >>"$LOG" 2>&1 || true
        apt-get install -y -qq wrk >>"$LOG" 2>&1 || die "could not install wrk (apt-get install wrk)"
    fi
fi
command -v taskset >/dev/null || { log "taskset missing: pinning disabled"; PIN=0; PIN_LOAD=(); PIN_PROXY=(); WRK_CPU=""; PROXY_CPU=""; PINNING="none (taskset missing)"; }

# ------------------------------------------------------------------ start servers
port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}
for p in $MOCK_PORT $FLOOR_PORT $GW_PORT; do
    port_free "$p" || die "port $p on 127.0.0.1 is busy (set BENCH_PORT_BASE)"
done

# wait_for_line PID LOGFILE TEXT NAME: the server is ready once it printed TEXT.
wait_for_line() {
    local pid=$1 file=$2 text=$3 name=$4
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$file" >&2; die "$name exited during start-up"; }
        grep -qF "$text" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    die "$name did not print '$text' within 10 s"
}

MOCK_ARGS=(--port "$MOCK_PORT" --no-record)
[[ "$MOCK_LATENCY_MS" != "0" ]] && MOCK_ARGS+=(--latency-ms "$MOCK_LATENCY_MS")
log "starting switchyard-mock on $HOST:$MOCK_PORT (latency ${MOCK_LATENCY_MS} ms)"
"${PIN_LOAD[@]}" "$MOCK_BIN" "${MOCK_ARGS[@]}" >"$OUT/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_for_line "$MOCK_PID" "$OUT/mock.log" "switchyard-mock listening on http://$HOST:$MOCK_PORT" switchyard-mock

log "starting floor-proxy on $HOST:$FLOOR_PORT -> $HOST:$MOCK_PORT"
"${PIN_PROXY[@]}" "$FLOOR_BIN" --port "$FLOOR_PORT" --upstream "$HOST:$MOCK_PORT" >"$OUT/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
wait_for_line "$FLOOR_PID" "$OUT/floor.log" "floor-proxy listening on http://$HOST:$FLOOR_PORT" floor-proxy

# curl_json URL BODY -> prints the HTTP status; the body goes to the run log.
curl_json() {
    local code
    code=$(curl -s --noproxy '*' -o "$OUT/curl-body.txt" -w '%{http_code}' --max-time 10 \
        -H 'Content-Type: application/json' -d "$2" "$1") || code=000
    { echo "POST $1 -> $code"; cat "$OUT/curl-body.txt"; echo; } >>"$LOG"
    echo "$code"
}

GW_PID=""
if [[ -z "$GW_SKIP" ]]; then
    APP_DIR="$(mktemp -d /tmp/switchyard-bench.XXXXXX)"
    log "starting switchyard on $HOST:$GW_PORT (app dir $APP_DIR)"
    "${PIN_PROXY[@]}" "$GW_BIN" --host "$HOST" --port "$GW_PORT" --app-dir "$APP_DIR" --log-level warn \
        >"$OUT/switchyard.log" 2>&1 &
    GW_PID=$!
    PIDS+=("$GW_PID")
    healthy=0
    for _ in $(seq 1 300); do
        kill -0 "$GW_PID" 2>/dev/null || break
        if [[ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 1 "http://$HOST:$GW_PORT/health")" == 200 ]]; then
            healthy=1
            break
        fi
        sleep 0.1
    done
    if [[ "$healthy" != 1 ]] && ! kill -0 "$GW_PID" 2>/dev/null; then
        GW_SKIP="switchyard exited during start-up"
    elif [[ "$healthy" != 1 ]]; then
        GW_SKIP="switchyard did not answer GET /health with 200 within 30 s"
    else
        # Providers mock (OpenAI wire) and anthropic (Anthropic wire), a price for mock/echo and the
        # governed scenarios' virtual key (budget + rate limits): bench/lib.sh.
        if ! configure_gateway "$GW_PORT" "$MOCK_PORT" "$BENCH_VK_DEFAULT" 2>>"$LOG"; then
            GW_SKIP="configuring switchyard failed (see bench/lib.sh configure_gateway)"
        elif [[ " $SCENARIOS " == *" cache-hit-c1 "* ]]; then
            c3=$(curl_json "http://$HOST:$GW_PORT/api/plugins" \
                '{"name":"semantic_cache","enabled":true,"config":{"dimension":1,"ttl":"1h"}}')
            [[ "$c3" == 2* ]] || GW_SKIP="enabling the response cache failed (POST /api/plugins -> $c3)"
        fi
    fi
    if [[ -n "$GW_SKIP" ]]; then
        log "SKIPPING switchyard: $GW_SKIP (log: $OUT/switchyard.log)"
        kill -TERM "$GW_PID" 2>/dev/null || true
        GW_PID=""
    fi
else
    log "SKIPPING switchyard: $GW_SKIP"
fi

# ------------------------------------------------------------------ measure
CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
MEM_GB="$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)"
GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no -- crates Cargo.toml Cargo.lock bench/floor-proxy bench/loadgen 2>/dev/null)" ]]; then
    GIT_REV="$GIT_REV + uncommitted changes"
fi
[[ "$SKIP_BUILD" == "1" ]] && GIT_REV="$GIT_REV (BENCH_SKIP_BUILD=1: binaries may be older)"
export BENCH_GIT_REV="$GIT_REV"
export BENCH_MACHINE="$NCPU × ${CPU_MODEL:-unknown CPU}, ${MEM_GB} GB RAM, $(uname -sr)"

HARNESS_ARGS=(
    --out-dir "$OUT"
    --mock "$MOCK_PORT:$MOCK_PID"
    --floor "$FLOOR_PORT:$FLOOR_PID"
    --seconds "$SECONDS_PER_RUN"
    --rounds "$ROUNDS"
    --warmup-seconds "$WARMUP"
    --scenarios "$SCENARIOS"
    --mock-latency-ms "$MOCK_LATENCY_MS"
    --wrk-cpu "$WRK_CPU"
    --proxy-cpu "$PROXY_CPU"
    --pinning "$PINNING"
    --quiet-wait-seconds "$QUIET_WAIT"
    --quiet-threshold "$QUIET_THRESHOLD"
    --retries "$RETRIES"
    --streams "$STREAMS"
    --idle-conns "$IDLE_CONNS"
    --soak-seconds "$SOAK_SECONDS"
)
if [[ -n "$GW_PID" ]]; then
    HARNESS_ARGS+=(--switchyard "$GW_PORT:$GW_PID")
else
    HARNESS_ARGS+=(--switchyard-skip "$GW_SKIP")
fi

# In the background + wait, so that INT/TERM reach the trap at once (the harness stops wrk itself).
# Progress goes to stderr (and the run log); only the table goes to stdout.
python3 "$ROOT/bench/harness.py" "${HARNESS_ARGS[@]}" >"$OUT/harness.stdout" 2> >(tee -a "$LOG" >&2) &
HARNESS_PID=$!
PIDS+=("$HARNESS_PID")
wait "$HARNESS_PID"

cp "$OUT/summary.md" "$ROOT/bench/results/latest.md"
echo >&2
cat "$OUT/summary.md"
log "results: $OUT (summary.md, runs.jsonl, raw/, server logs); copy in bench/results/latest.md"
