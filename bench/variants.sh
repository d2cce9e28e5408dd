#!/usr/bin/env bash
# Switchyard against itself, in one run: pass-through with the request log on (the default), the same
# with --no-request-logs, the translated path (OpenAI client -> Anthropic wire) with logging on, and
# governance on (a virtual key with a budget, a request+token rate limit and a concurrency cap; limits
# high enough never to refuse, so every request pays for the full check, reservation and settlement),
# and three guardrails on both stages (PII redact, secrets block, a custom regex log; the prompt and
# answer match none, so every request pays for the scans and nothing else) against none configured.
# Reports requests/s, p50/p99 and the gateway's CPU per request (utime+stime from /proc over the run).
# Loopback only. Usage: bash bench/variants.sh   (env: VARIANT_SECONDS=8 VARIANT_CONNS=8 VARIANT_ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${VARIANT_SECONDS:-8}"
CONNS="${VARIANT_CONNS:-8}"
ROUNDS="${VARIANT_ROUNDS:-3}"
HOST=127.0.0.1
MOCK_PORT=18800; GW_ON=18801; GW_OFF=18802; GW_GOV=18803; GW_GUARD=18804
VK=sk-bf-bench-governance-0123456789  # as in bench/lib.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ "${VARIANT_SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p switchyard -p switchyard-mock
BIN="${VARIANT_BIN:-target/release}"
WORK="$(mktemp -d /tmp/switchyard-variants.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/switchyard-mock" --port "$MOCK_PORT" --no-record >"$WORK/mock.log" 2>&1 & PIDS+=($!)
"$BIN/switchyard" --host $HOST --port $GW_ON --app-dir "$WORK/on" --log-level warn >"$WORK/on.log" 2>&1 & PID_ON=$!; PIDS+=($PID_ON)
"$BIN/switchyard" --host $HOST --port $GW_OFF --app-dir "$WORK/off" --log-level warn --no-request-logs >"$WORK/off.log" 2>&1 & PID_OFF=$!; PIDS+=($PID_OFF)
# Governance counters in memory by default; set VARIANT_REDIS_URL=redis://127.0.0.1:6379 to measure Redis.
"$BIN/switchyard" --host $HOST --port $GW_GOV --app-dir "$WORK/gov" --log-level warn ${VARIANT_REDIS_URL:+--redis-url "$VARIANT_REDIS_URL" --redis-key-prefix "bench:$$:"} >"$WORK/gov.log" 2>&1 & PID_GOV=$!; PIDS+=($PID_GOV)
"$BIN/switchyard" --host $HOST --port $GW_GUARD --app-dir "$WORK/guard" --log-level warn >"$WORK/guard.log" 2>&1 & PID_GUARD=$!; PIDS+=($PID_GUARD)
source bench/lib.sh
for port in $GW_ON $GW_OFF $GW_GOV $GW_GUARD; do
  for _ in $(seq 100); do curl -sf "http://$HOST:$port/health" >/dev/null && break; sleep 0.1; done
  configure_gateway "$port" "$MOCK_PORT" "$VK"
done

lua() { # $1 model
  cat >"$WORK/$2.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"$1","messages":[{"role":"user","content":"Hello there, how are you"}],"max_tokens":16}'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
LUA
}
lua mock/echo pass; lua anthropic/echo translated
sed 's/^wrk.headers\["Content-Type"\] = "application\/json"$/&\nwrk.headers["x-bf-vk"] = "'"$VK"'"/' "$WORK/pass.lua" >"$WORK/governed.lua"
for g in '{"name":"pii","type":"pii","entities":["email","phone","iban","credit_card"],"stage":"both","action":"redact"}' \
         '{"name":"secrets","type":"secrets","stage":"both","action":"block"}' \
         '{"name":"project-names","type":"regex","patterns":["Projekt [A-Z][a-z]+"],"stage":"both","action":"log"}'; do
  curl -sf "http://$HOST:$GW_GUARD/api/guardrails" -H 'Content-Type: application/json' -d "$g" >/dev/null
done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

run() { # name port pid script
  local before after out
  before=$(cpu "$3")
  out=$(wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" -s "$WORK/$4.lua" "http://$HOST:$2/v1/chat/completions" | grep RESULT)
  after=$(cpu "$3")
  read -r _ reqs errs bad p50 p99 <<<"$out"
  python3 -c "
reqs=$reqs; cpu=($after-$before)/$TICK
print(f'$1|{reqs/$SECONDS_PER_RUN:.0f}|{$p50/1000:.3f}|{$p99/1000:.3f}|{cpu/reqs*1e6:.1f}|$errs/$bad')"
}
# warm-up
for s in pass translated; do wrk -t1 -c4 -d2s -s "$WORK/$s.lua" "http://$HOST:$GW_ON/v1/chat/completions" >/dev/null; done
wrk -t1 -c4 -d2s -s "$WORK/pass.lua" "http://$HOST:$GW_OFF/v1/chat/completions" >/dev/null
wrk -t1 -c4 -d2s -s "$WORK/governed.lua" "http://$HOST:$GW_GOV/v1/chat/completions" >/dev/null
wrk -t1 -c4 -d2s -s "$WORK/pass.lua" "http://$HOST:$GW_GUARD/v1/chat/completions" >/dev/null
RES="$WORK/results.txt"; : >"$RES"
for r in $(seq "$ROUNDS"); do
  run "pass-through, request log on" $GW_ON $PID_ON pass >>"$RES"
  run "pass-through, request log off" $GW_OFF $PID_OFF pass >>"$RES"
  run "translated (OpenAI -> Anthropic), log on" $GW_ON $PID_ON translated >>"$RES"
  run "pass-through, log on, governance on (VK + budget + rate limits)" $GW_GOV $PID_GOV governed >>"$RES"
  run "pass-through, log on, three guardrails (both stages)" $GW_GUARD $PID_GUARD pass >>"$RES"
done
python3 - "$RES" "$CONNS" "$ROUNDS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, *vals = line.strip().split("|")
    rows.setdefault(name, []).append(vals)
print(f"JSON, c={sys.argv[2]}, median of {sys.argv[3]} interleaved rounds\n")
print("| variant | req/s | p50 ms | p99 ms | gateway CPU µs/request | errors (conn/status) |")
print("|---|---:|---:|---:|---:|---|")
for name, runs in rows.items():
    med = lambda i: statistics.median(float(r[i]) for r in runs)
    print(f"| {name} | {med(0):.0f} | {med(1):.3f} | {med(2):.3f} | {med(3):.1f} | {runs[-1][4]} |")
PY
