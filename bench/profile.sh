#!/usr/bin/env bash
# Load-independent measures of the gateway's own cost, for before/after comparisons on a busy machine:
#
#   bash bench/profile.sh [callgrind] [rss]      (default: both)
#
#   callgrind  instructions (Ir) per request, all threads (the log writer's SQLite work included),
#              for JSON, SSE, governed (virtual key + budget + rate limit + priced model) and translated
#              (OpenAI client -> Anthropic wire) requests, and for floor-proxy (JSON, SSE). Split into
#              the request path (every thread but the log writer: same binary, same input -> same
#              count, whatever else the machine is doing) and the log writer thread (its cost per row
#              falls with the rows per batch, which depend on timing under valgrind).
#   rss        VmRSS idle; VmHWM under wrk at c=32 (JSON, SSE) and c=256 (JSON); VmRSS added by
#              2,000 idle keep-alive connections. Memory depends little on CPU contention.
#   heap       what each of 2,000 idle keep-alive connections holds, by allocation site (valgrind's
#              DHAT, heap bytes live at the peak): needs a build on the C allocator, which DHAT can
#              see (PROFILE_HEAP_BIN, default: built here with `--profile profiling --features
#              switchyard/system-allocator`). Not in the default set.
#
# Env: PROFILE_BIN_DIR [target/release] (switchyard, switchyard-mock, floor-proxy, switchyard-loadgen;
# not built here), PROFILE_REQUESTS [2000] per shape, PROFILE_PORT_BASE [18900], PROFILE_KEEP [unset:
# a directory for the callgrind dumps]. Prints one Markdown table per measure to stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'
# 2,000 idle connections need more open files than the common default soft limit (1,024).
NOFILE_HARD="$(ulimit -Hn)"
[[ "$NOFILE_HARD" == unlimited ]] && NOFILE_HARD=1048576
ulimit -n "$NOFILE_HARD" 2>/dev/null || true

BIN="${PROFILE_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
N="${PROFILE_REQUESTS:-2000}"
BASE="${PROFILE_PORT_BASE:-18900}"
MOCK_PORT=$BASE GW_PORT=$((BASE + 1)) FLOOR_PORT=$((BASE + 2))
VK=$BENCH_VK_DEFAULT
MEASURES="${*:-callgrind rss}"
WORK="$(mktemp -d /tmp/switchyard-profile.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[profile] $*" >&2; }

wait_health() { # URL SECONDS
    for _ in $(seq $(($2 * 10))); do
        curl -sf --noproxy '*' -o /dev/null --max-time 2 "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}
start_gateway() { # PREFIX... (e.g. valgrind --tool=callgrind): starts the gateway, configures it
    rm -rf "$WORK/app"
    "$@" "$BIN/switchyard" --host 127.0.0.1 --port "$GW_PORT" --app-dir "$WORK/app" --log-level warn \
        >>"$WORK/gw.log" 2>&1 &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_health "http://127.0.0.1:$GW_PORT/health" 120
    configure_gateway "$GW_PORT" "$MOCK_PORT" "$VK"
}
# cg_dump PID PREFIX REQUESTS -> "path writer": Ir per request since the last zero/dump, of every
# thread but the log writer, and of the log writer (the thread that ran SQLite)
cg_dump() {
    local before
    before=$(ls "$2"* 2>/dev/null | wc -l)
    callgrind_control -d "$1" >/dev/null
    for _ in $(seq 300); do # one file per thread (`--separate-threads=yes`)
        [[ $(ls "$2"* 2>/dev/null | wc -l) -gt $before ]] && break
        sleep 0.1
    done
    sleep 1
    local n
    n=$(ls "$2".* 2>/dev/null | sed -E 's/.*\.([0-9]+)(-[0-9]+)?$/\1/' | sort -n | tail -1)
    python3 - "$3" "$2".$n-* <<'PY'
import sys
n=int(sys.argv[1]); req=0; wr=0
for f in sys.argv[2:]:
    t=0; sq=False
    for line in open(f):
        if line.startswith('totals:'): t=int(line.split()[1])
        if 'sqlite3_step' in line: sq=True
    if sq: wr+=t
    else: req+=t
print(f"{req//n} {wr//n}")
PY
}
stop() { # PID: SIGTERM and wait (valgrind tools write their output at exit)
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# drive PORT SHAPE REQUESTS CONNS -> prints the number of answers
drive() {
    local port=$1 shape=$2 n=$3 c=$4 model=mock/echo stream=false vk=""
    case $shape in
        sse) stream=true ;;
        governed) vk=$VK ;;
        translated) model=anthropic/echo ;;
    esac
    [[ $port == "$FLOOR_PORT" ]] && model=echo
    wrk_lua "$WORK/$shape.lua" "$model" "$stream" "$vk" "$n"
    wrk -t1 -c"$c" -d600s -s "$WORK/$shape.lua" "http://127.0.0.1:$port/v1/chat/completions" |
        awk '/^RESULT/ { if ($3 + $4 > 0) print "errors: " $0 > "/dev/stderr"; print $2 }'
}

"$BIN/switchyard-mock" --port "$MOCK_PORT" --no-record >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
wait_health "http://127.0.0.1:$MOCK_PORT/v1/models" 20 || true

callgrind() {
    log "callgrind: gateway under valgrind, $N requests per shape"
    start_gateway valgrind --tool=callgrind --dump-instr=no --separate-threads=yes --callgrind-out-file="$WORK/cg.out"
    local shapes=(json sse governed translated)
    for s in "${shapes[@]}"; do drive "$GW_PORT" "$s" 100 2 >/dev/null; done
    declare -A sw fl
    for s in "${shapes[@]}"; do
        callgrind_control -z "$GW_PID" >/dev/null
        local got
        got=$(drive "$GW_PORT" "$s" "$N" 2)
        sw[$s]=$(cg_dump "$GW_PID" "$WORK/cg.out" "$got")
    done
    stop "$GW_PID"
    valgrind --tool=callgrind --dump-instr=no --separate-threads=yes --callgrind-out-file="$WORK/fl.out" \
        "$BIN/floor-proxy" --port "$FLOOR_PORT" --upstream "127.0.0.1:$MOCK_PORT" >"$WORK/floor.log" 2>&1 &
    local fpid=$!
    PIDS+=("$fpid")
    sleep 3
    for s in json sse; do
        drive "$FLOOR_PORT" "$s" 100 2 >/dev/null
        callgrind_control -z "$fpid" >/dev/null
        local got
        got=$(drive "$FLOOR_PORT" "$s" "$N" 2)
        fl[$s]=$(cg_dump "$fpid" "$WORK/fl.out" "$got")
    done
    stop "$fpid"
    echo "| shape | switchyard Ir / request | of which the request path | of which the log writer | floor-proxy Ir / request | ratio |"
    echo "|---|---:|---:|---:|---:|---:|"
    for s in "${shapes[@]}"; do
        local f=${fl[$s]:-${fl[json]}} path=${sw[$s]%% *} writer=${sw[$s]##* }
        f=${f%% *}
        printf '| %s | %s | %s | %s | %s | %s× |\n' "$s" "$((path + writer))" "$path" "$writer" "$f" \
            "$(awk -v a="$((path + writer))" -v b="$f" 'BEGIN { printf "%.2f", a / b }')"
    done
    echo
    # PROFILE_KEEP=DIR keeps the dumps (cg.out.1..4: json, sse, governed, translated) for callgrind_annotate.
    [[ -n "${PROFILE_KEEP:-}" ]] && mkdir -p "$PROFILE_KEEP" && cp "$WORK"/cg.out* "$WORK"/fl.out* "$PROFILE_KEEP"/
    return 0
}

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
peak_under() { # PID PORT SHAPE CONNS SECONDS -> VmHWM (MB) during the load
    echo 5 >"/proc/$1/clear_refs"
    local model=mock/echo stream=false
    [[ $3 == sse ]] && stream=true
    [[ $2 == "$FLOOR_PORT" ]] && model=echo
    wrk_lua "$WORK/rss.lua" "$model" "$stream"
    wrk -t1 -c"$4" -d"$5s" -s "$WORK/rss.lua" "http://127.0.0.1:$2/v1/chat/completions" >/dev/null
    mb "$(status_kb "$1" VmHWM)"
}
rss_of() { # PID PORT LABEL
    local pid=$1 port=$2 idle j32 s32 j256 held
    idle=$(mb "$(status_kb "$pid" VmRSS)")
    j32=$(peak_under "$pid" "$port" json 32 5)
    s32=$(peak_under "$pid" "$port" sse 32 5)
    j256=$(peak_under "$pid" "$port" json 256 5)
    local body='{"model":"mock/echo","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
    [[ $port == "$FLOOR_PORT" ]] && body='{"model":"echo","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
    held=$("$BIN/switchyard-loadgen" idle --port "$port" --conns 2000 --pid "$pid" --body "$body" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print("%+.1f (%d open, %d errors)" % (d["added_kb"]/1024, d["conns"], d["errors"]))')
    local after
    after=$(mb "$(status_kb "$pid" VmRSS)")
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$3" "$idle" "$j32" "$s32" "$j256" "$held" "$after"
}
rss() {
    log "rss: idle, peak at c=32 / c=256, 2,000 idle keep-alive connections"
    start_gateway
    curl -sf --noproxy '*' -o /dev/null -H 'Content-Type: application/json' \
        -d '{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}' "http://127.0.0.1:$GW_PORT/v1/chat/completions"
    "$BIN/floor-proxy" --port "$FLOOR_PORT" --upstream "127.0.0.1:$MOCK_PORT" >"$WORK/floor.log" 2>&1 &
    local fpid=$!
    PIDS+=("$fpid")
    sleep 1
    echo "| target | idle MB | peak c=32 JSON MB | peak c=32 SSE MB | peak c=256 JSON MB | 2,000 idle conns MB | RSS after MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    rss_of "$fpid" "$FLOOR_PORT" floor-proxy
    rss_of "$GW_PID" "$GW_PORT" switchyard
    echo
    stop "$GW_PID"
}

heap() {
    local bin="${PROFILE_HEAP_BIN:-}"
    if [[ -z "$bin" ]]; then
        log "heap: building the gateway on the C allocator (profile 'profiling')"
        cargo build --profile profiling -q -p switchyard --features switchyard/system-allocator
        bin="${CARGO_TARGET_DIR:-$ROOT/target}/profiling/switchyard"
    fi
    log "heap: gateway under DHAT, 2,000 idle keep-alive connections"
    rm -rf "$WORK/app"
    valgrind --tool=dhat --dhat-out-file="$WORK/dhat.json" "$bin" --host 127.0.0.1 --port "$GW_PORT" \
        --app-dir "$WORK/app" --log-level warn >>"$WORK/gw.log" 2>&1 &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_health "http://127.0.0.1:$GW_PORT/health" 120
    configure_gateway "$GW_PORT" "$MOCK_PORT" "$VK"
    local body='{"model":"mock/echo","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
    "$BIN/switchyard-loadgen" idle --port "$GW_PORT" --conns 2000 --pid "$GW_PID" --body "$body" \
        --timeout-s 300 >/dev/null
    stop "$GW_PID"
    python3 "$ROOT/bench/dhat_sites.py" "$WORK/dhat.json" 2000
}

for m in $MEASURES; do "$m"; done
