#!/usr/bin/env bash
# CPU per role of the proxy chain (proxy-dev, proxy-pub, proxy-sub), each role libzmq's or ours, 64 B tcp
# NULL: throughput and `perf stat` task-clock (ms) of each process, plus the proxy's context switches.
# The CPU figures in BENCHMARKS.md, "Proxy", come from this script.
#   bench/proxy-cpu.sh DEV PUB SUB [RUNS] [COUNT]     each of DEV PUB SUB: libzmq | swift
#   e.g. bench/proxy-cpu.sh swift libzmq libzmq 5     (our proxy between libzmq's publisher and subscriber)
# Needs perf, a copy of ../shared/bench built with make in $BENCH (default /tmp/bench), and a release
# build of zmtp (swift build -c release --product zmtp).
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,8p "$0"; exit 2; }
runs=${4:-3}
count=${5:-4000000}
bench=${BENCH:-/tmp/bench}
zmtp="${ZMTP:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/zmtp}"
role() {  # IMPL NAME -> the command of that role
    case "$1" in
    libzmq) echo "$bench/proxy_$2" ;;
    swift) echo "$zmtp bench proxy-$2" ;;
    *) echo "unknown implementation '$1' (libzmq or swift)" >&2; exit 2 ;;
    esac
}
dev=$(role "$1" dev); pub=$(role "$2" pub); sub=$(role "$3" sub)
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
cd "$bench"
for _ in $(seq "$runs"); do
    port=$((25100 + RANDOM % 800))
    perf stat -x, -e task-clock,context-switches -o "$out/dev" $dev "tcp://127.0.0.1:$port" "tcp://127.0.0.1:$((port + 1))" --timeout 60 &
    proxy=$!
    sleep 0.3
    perf stat -x, -e task-clock -o "$out/sub" $sub "tcp://127.0.0.1:$((port + 1))" 64 "$count" --timeout 60 > "$out/result" &
    subscriber=$!
    sleep 0.2
    perf stat -x, -e task-clock -o "$out/pub" $pub "tcp://127.0.0.1:$port" 64 "$count" --timeout 60 &
    wait "$subscriber"
    sleep 0.3
    pkill -INT -P "$proxy" 2>/dev/null || true; kill -INT "$proxy" 2>/dev/null || true; sleep 0.5
    pkill -TERM -P "$proxy" 2>/dev/null || true; wait 2>/dev/null || true
    ms() { awk -F, '$3 == "task-clock" { printf "%.0f", $1 }' "$1"; }
    switches=$(awk -F, '$3 == "context-switches" { print $1 }' "$out/dev")
    echo "dev=$1 pub=$2 sub=$3 $(grep -o 'msgs_per_s=[0-9]*' "$out/result") cpu_ms: dev=$(ms "$out/dev") pub=$(ms "$out/pub") sub=$(ms "$out/sub") dev_context_switches=$switches"
done
