#!/usr/bin/env bash
# The traffic generator against wrk and oha: the most requests per second each drives through
# the same local nginx on this machine, in one run, and the CPU each spends per request.
# Generator and server share the machine's cores, so a generator's own cost shows as a lower
# rate: compare the ratios, which one run measures under the same conditions.
#
# The same, over HTTPS (TLS 1.3, HTTP/1.1) to the same nginx with a certificate from a CA made
# here: wrk does not verify it, oha is told not to (--insecure), firedrill trusts the CA (--ca).
#
# Usage: benches/load-compare.sh [SECONDS] [CONNECTIONS]      (as root, for apt)
# Installs what it lacks: wrk, nginx-light and openssl from Debian, oha from crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TOOL=${1:-10}
CONNECTIONS=${2:-64}
PORT=18099
TLS_PORT=18443

command -v wrk >/dev/null && command -v nginx >/dev/null && command -v openssl >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light openssl >/dev/null
}
command -v oha >/dev/null || cargo install oha --locked
cargo build --release --locked --bin firedrill >/dev/null 2>&1
FIREDRILL=target/release/firedrill

work=$(mktemp -d)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
# A CA and a certificate it signs for 127.0.0.1 (rustls takes no self-signed certificate as its
# own CA).
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -days 1 -subj /CN=firedrill-bench-ca -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req $ec -subj /CN=127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$work/cert.ext"
openssl x509 -req -in "$work/cert.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
    -extfile "$work/cert.ext" -out "$work/cert.pem" 2>/dev/null
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
        listen 127.0.0.1:$TLS_PORT ssl;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.3;
        location / { return 200 "ok"; }
    }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.5

echo "nginx (1 worker) at 127.0.0.1:$PORT (http) and :$TLS_PORT (https); $CONNECTIONS connections, ${SECONDS_PER_TOOL}s each, $(nproc) cores"
printf '%-10s %-6s %12s %10s %14s\n' tool scheme "requests/s" "vs wrk" "CPU µs/req"

# Each tool's rate on stdout; its user and system CPU seconds in $work/TOOL.time.
run_wrk() { # url
    TIMEFORMAT="%U %S"
    { time wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_TOOL}s" "$1" >"$work/wrk.txt"; } 2>"$work/wrk.time"
    awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt"
}
run_oha() { # url
    TIMEFORMAT="%U %S"
    { time oha -c "$CONNECTIONS" -z "${SECONDS_PER_TOOL}s" --no-tui --insecure --output-format json "$1" >"$work/oha.json"; } 2>"$work/oha.time"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"])' "$work/oha.json"
}
run_firedrill() { # url
    TIMEFORMAT="%U %S"
    { time "$FIREDRILL" load --users "$CONNECTIONS" --connections "$CONNECTIONS" --duration "${SECONDS_PER_TOOL}s" --ca "$work/ca.pem" --format json "$1" >"$work/firedrill.json"; } 2>"$work/firedrill.time"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ok"] / float(sys.argv[2]))' "$work/firedrill.json" "$SECONDS_PER_TOOL"
}
cpu_per_request() { # time file, rate
    python3 -c 'import sys; u,s=map(float,open(sys.argv[1]).read().split()); print(f"{(u+s)*1e6/(float(sys.argv[2])*float(sys.argv[3])):.1f}")' "$1" "$2" "$SECONDS_PER_TOOL"
}

for url in "http://127.0.0.1:$PORT/" "https://127.0.0.1:$TLS_PORT/"; do
    declare -A rate=()
    for tool in wrk oha firedrill; do
        rate[$tool]=$("run_$tool" "$url")
        printf '%-10s %-6s %12.0f %10s %14s\n' "$tool" "${url%%:*}" "${rate[$tool]}" \
            "$(python3 -c "print(f'{${rate[$tool]}/${rate[wrk]}:.2f}')")" "$(cpu_per_request "$work/$tool.time" "${rate[$tool]}")"
    done
done
