#!/usr/bin/env bash
# The traffic generator against wrk and oha: the most requests per second each drives through
# the same local nginx on this machine, in one run, and the CPU each spends per request.
# Generator and server share the machine's cores, so a generator's own cost shows as a lower
# rate: compare the ratios, which one run measures under the same conditions.
#
# Usage: benches/load-compare.sh [SECONDS] [CONNECTIONS]      (as root, for apt)
# Installs what it lacks: wrk and nginx-light from Debian, oha from crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TOOL=${1:-10}
CONNECTIONS=${2:-64}
PORT=18099
URL="http://127.0.0.1:$PORT/"

command -v wrk >/dev/null && command -v nginx >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
}
command -v oha >/dev/null || cargo install oha --locked
cargo build --release --locked --bin firedrill >/dev/null 2>&1
FIREDRILL=target/release/firedrill

work=$(mktemp -d)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "ok"; }
    }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.5

echo "nginx (1 worker) at $URL; $CONNECTIONS connections, ${SECONDS_PER_TOOL}s each, $(nproc) cores"
printf '%-10s %12s %10s %14s\n' tool "requests/s" "vs wrk" "CPU µs/req"

run_wrk() {
    TIMEFORMAT="%U %S"
    { time wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_TOOL}s" "$URL" >"$work/wrk.txt"; } 2>"$work/wrk.time"
    awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt"
}
run_oha() {
    TIMEFORMAT="%U %S"
    { time oha -c "$CONNECTIONS" -z "${SECONDS_PER_TOOL}s" --no-tui --output-format json "$URL" >"$work/oha.json"; } 2>"$work/oha.time"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"])' "$work/oha.json"
}
run_firedrill() {
    TIMEFORMAT="%U %S"
    { time "$FIREDRILL" load --users "$CONNECTIONS" --connections "$CONNECTIONS" --duration "${SECONDS_PER_TOOL}s" --format json "$URL" >"$work/firedrill.json"; } 2>"$work/firedrill.time"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ok"] / float(sys.argv[2]))' "$work/firedrill.json" "$SECONDS_PER_TOOL"
}
cpu_per_request() { # time file, rate
    python3 -c 'import sys; u,s=map(float,open(sys.argv[1]).read().split()); print(f"{(u+s)*1e6/(float(sys.argv[2])*float(sys.argv[3])):.1f}")' "$1" "$2" "$SECONDS_PER_TOOL"
}

wrk_rate=$(run_wrk)
oha_rate=$(run_oha)
fd_rate=$(run_firedrill)
for tool in wrk oha firedrill; do
    rate_var="${tool/firedrill/fd}_rate"
    rate=${!rate_var}
    ratio=$(python3 -c "print(f'{float($rate)/float($wrk_rate):.2f}')")
    printf '%-10s %12.0f %10s %14s\n' "$tool" "$rate" "$ratio" "$(cpu_per_request "$work/$tool.time" "$rate")"
done
