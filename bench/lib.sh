# Shared by bench/run.sh, bench/profile.sh and bench/variants.sh (source it): how the gateway under
# test is configured. Loopback only.
#
# configure_gateway GW_PORT MOCK_PORT VK -> 0 when every call answered 2xx. Sets up:
#   - provider `mock` (OpenAI wire) and `anthropic` (Anthropic wire), both pointing at the mock;
#   - an operator price for mock/echo, so a budget can count it;
#   - virtual key VK with a daily budget, a request and a token rate limit (1 h) and a concurrency cap,
#     all far above what a run reaches: every governed request pays the whole check, reservation and
#     settlement, none is refused.
BENCH_VK_DEFAULT=sk-bf-bench-governance-0123456789

bench_post() { # URL BODY -> fails unless 2xx
    curl -sf --noproxy '*' --max-time 10 -H 'Content-Type: application/json' -d "$2" "$1" >/dev/null
}

configure_gateway() {
    local gw="http://127.0.0.1:$1" mock="http://127.0.0.1:$2/v1" vk="$3"
    bench_post "$gw/api/providers" \
        '{"provider":"mock","network_config":{"base_url":"'"$mock"'"},"custom_provider_config":{"base_provider_type":"openai"}}' &&
        bench_post "$gw/api/providers/mock/keys" '{"name":"bench-key","value":"sk-bench","models":["*"],"weight":1.0}' &&
        bench_post "$gw/api/providers" '{"provider":"anthropic","network_config":{"base_url":"'"$mock"'"}}' &&
        bench_post "$gw/api/providers/anthropic/keys" '{"name":"bench-key","value":"sk-bench","models":["*"]}' &&
        bench_post "$gw/api/governance/pricing-overrides" \
            '{"provider":"mock","model":"echo","input_cost_per_million_tokens":0.5,"output_cost_per_million_tokens":1.5}' &&
        bench_post "$gw/api/governance/virtual-keys" \
            '{"name":"bench","value":"'"$vk"'","budgets":[{"max_limit":1000000,"reset_duration":"1d"}],"rate_limit":{"request_max_limit":100000000,"request_reset_duration":"1h","token_max_limit":1000000000000,"token_reset_duration":"1h"},"max_concurrent_requests":100000}'
}

# wrk_lua FILE MODEL STREAM [VK] [STOP_AFTER]: a wrk script for the benchmark's chat request. With
# STOP_AFTER, wrk (-t1) exits after that many answers (a fixed amount of work, for profilers).
wrk_lua() {
    local file=$1 model=$2 stream=$3 vk=${4:-} stop=${5:-0}
    {
        echo 'wrk.method = "POST"'
        echo 'wrk.path = "/v1/chat/completions"'
        echo 'wrk.headers["Content-Type"] = "application/json"'
        [[ -n "$vk" ]] && echo "wrk.headers[\"x-bf-vk\"] = \"$vk\""
        echo "wrk.body = '{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there, how are you\"}],\"max_tokens\":16,\"stream\":$stream}'"
        if [[ "$stop" != 0 ]]; then
            # wrk keeps running for its whole -d after a thread stops: print and exit instead (-t1).
            echo "local n, bad = 0, 0"
            echo "function response(status) n = n + 1; if status >= 400 then bad = bad + 1 end"
            echo "  if n >= $stop then io.write(string.format('RESULT %d 0 %d\\n', n, bad)); io.flush(); os.exit(0) end end"
        fi
        echo 'function done(s, l) io.write(string.format("RESULT %d %d %d\n", s.requests,'
        echo '  s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout, s.errors.status)) end'
    } >"$file"
}
