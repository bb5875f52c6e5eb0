#!/usr/bin/env bash
# Quick A/B of the proxy chain (proxy-dev, proxy-pub, proxy-sub), libzmq against swift-zmtp, 64 B tcp
# NULL, alternating single runs: for trying a change in minutes. Claims use ../shared/bench/compare.sh.
#   bench/proxy-chain.sh [RUNS] [COUNT]     (needs a copy of ../shared/bench built with make, in $BENCH)
set -euo pipefail
runs=${1:-3}
count=${2:-2000000}
bench=${BENCH:-/tmp/bench}
zmtp="$(cd "$(dirname "$0")/.." && pwd)/.build/release/zmtp"
cd "$bench"
for _ in $(seq "$runs"); do
    for impl in libzmq swift-zmtp; do
        if [ "$impl" = libzmq ]; then dev=./proxy_dev; pub=./proxy_pub; sub=./proxy_sub
        else dev="$zmtp bench proxy-dev"; pub="$zmtp bench proxy-pub"; sub="$zmtp bench proxy-sub"; fi
        port=$((25100 + RANDOM % 800))
        $dev "tcp://127.0.0.1:$port" "tcp://127.0.0.1:$((port + 1))" --timeout 60 & proxy=$!
        sleep 0.3
        $sub "tcp://127.0.0.1:$((port + 1))" 64 "$count" --timeout 60 > /tmp/proxy-chain.out & subscriber=$!
        sleep 0.2
        $pub "tcp://127.0.0.1:$port" 64 "$count" --timeout 60 &
        wait "$subscriber"
        echo "$impl $(grep -o 'msgs_per_s=[0-9]*' /tmp/proxy-chain.out)"
        kill "$proxy"
        wait 2>/dev/null || true
    done
done
