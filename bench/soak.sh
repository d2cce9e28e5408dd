#!/usr/bin/env bash
# Soak: a few minutes of normal and hostile traffic mixed against one switchyard process, with its RSS
# and open file descriptors sampled from /proc (method and results in BENCHMARKS.md).
#
#   bash bench/soak.sh
#
# Starts, on loopback: switchyard-mock (a well-behaved upstream), switchyard-mock --hostile (huge
# answers, endless events, echoed keys, 1xx/3xx, connections cut mid-head) and switchyard (admin
# token and password set, 1 MiB answer/event caps so the hostile cases hit them quickly); then
# bench/soak.py drives the traffic and writes bench/results/soak-<timestamp>/{summary.md,samples.csv}.
# Everything started here is stopped on exit. Exit status 1 when any answer was not the expected one.
#
# Environment knobs (defaults in brackets):
#   SOAK_SECONDS [180]        length of the run
#   SOAK_NORMAL_WORKERS [4]   threads sending normal chat traffic (JSON and SSE)
#   SOAK_SILENT_BATCH [100]   silent sockets opened at a time
#   SOAK_PORT_BASE [18800]    mock = base, hostile mock = base+1, switchyard = base+2
#   SOAK_BIN_DIR [target/release]  where the binaries are; SOAK_SKIP_BUILD=1 uses them as they are
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_TOTAL="${SOAK_SECONDS:-180}"
WORKERS="${SOAK_NORMAL_WORKERS:-4}"
BATCH="${SOAK_SILENT_BATCH:-100}"
BASE="${SOAK_PORT_BASE:-18800}"
BIN="${SOAK_BIN_DIR:-$ROOT/target/release}"
HEAD_DEADLINE=3
TOKEN="sy-admin-soak-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
KEY="sk-Soak-Hostile-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OUT="$ROOT/bench/results/soak-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'

log() { echo "[soak] $*" >&2; }

PIDS=()
APP_DIR="$(mktemp -d)"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$APP_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "${SOAK_SKIP_BUILD:-0}" != 1 && -z "${SOAK_BIN_DIR:-}" ]]; then
    log "building release binaries"
    cargo build --release --quiet -p switchyard -p switchyard-mock
fi

# wait_for_line PID FILE TEXT: ready once FILE contains TEXT.
wait_for_line() {
    for _ in $(seq 1 600); do
        grep -q "$3" "$2" 2>/dev/null && return 0
        kill -0 "$1" 2>/dev/null || { cat "$2" >&2; log "process $1 exited"; exit 1; }
        sleep 0.1
    done
    log "timed out waiting for '$3' in $2"; exit 1
}

"$BIN/switchyard-mock" --port "$BASE" --no-record >"$OUT/mock.log" 2>&1 &
PIDS+=($!); wait_for_line $! "$OUT/mock.log" "listening"
"$BIN/switchyard-mock" --hostile --port "$((BASE + 1))" --api-key "$KEY" --hostile-mb 64 >"$OUT/hostile.log" 2>&1 &
PIDS+=($!); wait_for_line $! "$OUT/hostile.log" "listening"
env -u SWITCHYARD_ADMIN_PASSWORD_HASH SWITCHYARD_ADMIN_TOKENS="$TOKEN" SWITCHYARD_ADMIN_PASSWORD="soak password 0451" \
    "$BIN/switchyard" --host 127.0.0.1 --port "$((BASE + 2))" --app-dir "$APP_DIR" --log-format json \
    --max-upstream-answer-mb 1 --max-sse-event-mb 1 --header-read-timeout-seconds "$HEAD_DEADLINE" \
    >"$OUT/switchyard.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID"); wait_for_line "$GW_PID" "$OUT/switchyard.log" "switchyard listening"

log "soaking for $SECONDS_TOTAL s; results in $OUT"
python3 "$ROOT/bench/soak.py" --port "$((BASE + 2))" --pid "$GW_PID" --mock-port "$BASE" \
    --hostile-port "$((BASE + 1))" --token "$TOKEN" --key "$KEY" --seconds "$SECONDS_TOTAL" \
    --normal-workers "$WORKERS" --silent-batch "$BATCH" --head-deadline "$HEAD_DEADLINE" --out "$OUT"
if grep -qi "$KEY" "$OUT/switchyard.log"; then log "the upstream key appears in the gateway's log"; exit 1; fi
