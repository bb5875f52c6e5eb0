#!/usr/bin/env bash
# Scale of the XSUB/XPUB proxy: many idle peers, many active subscribers. The figures in
# BENCHMARKS.md, "Scale", come from this script.
#
#   bench/scale.sh IMPL [PEERS] [ACTIVE]      IMPL: swift (zmtp proxy) | libzmq (zmq_proxy, proxy_dev)
#   e.g. bench/scale.sh swift 10000 1000; bench/scale.sh libzmq 10000 1000
#
# One proxy process, tcp on 127.0.0.1, one I/O thread on both sides (libzmq's default; IO_THREADS=N
# changes ours), XPUB_NODROP as in the shared benchmark's proxy_dev. Phases, each printed as one line:
#   1. alone:   proxy RSS with nothing connected; chain throughput (libzmq proxy_pub -> proxy ->
#               proxy_sub, SIZE-byte messages) with no other peer;
#   2. idle:    PEERS raw ZMTP SUB peers connect to the XPUB side, each subscribing to a topic of its
#               own ("idle.<i>."), at most 64 handshakes in flight; time until all are connected;
#               RSS afterwards, and per connection; the proxy's CPU and context switches over
#               IDLE_SECONDS while they stay connected and nothing is sent;
#   3. loaded:  the same chain throughput with the PEERS idle peers still attached;
#   4. fan-out: with a fresh proxy, ACTIVE peers subscribe to everything and read; the publisher sends FANOUT_COUNT
#               messages; delivered messages per second over all subscribers, and RSS;
#   5. stalled: with a fresh proxy, ACTIVE peers subscribe to everything and never read; the publisher sends
#               STALL_COUNT messages (it blocks once their queues are full: XPUB_NODROP); RSS
#               growth per stalled subscriber after STALL_SECONDS, which is what bounds a broker's
#               memory when nodes hang.
# Needs python3, a copy of ../shared/bench built with make in $BENCH (default /tmp/bench), and a
# release build of zmtp (swift build -c release --product zmtp). Neither this script nor the peers
# need more than the hard open-file limit (`ulimit -Hn`); peers + 100 descriptors each side.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,6p "$0"; exit 2; }
impl=$1
peers=${2:-10000}
active=${3:-1000}
size=${SIZE:-64}
chain_count=${CHAIN_COUNT:-2000000}
fanout_count=${FANOUT_COUNT:-10000}
idle_seconds=${IDLE_SECONDS:-20}
stall_count=${STALL_COUNT:-100000}
stall_seconds=${STALL_SECONDS:-5}
io_threads=${IO_THREADS:-1}
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-/tmp/bench}
zmtp="${ZMTP:-$here/../.build/release/zmtp}"
# The chain's publisher and subscriber (shared benchmark roles): libzmq's by default, so that only the
# proxy differs between runs; PUB="$zmtp bench proxy-pub" SUB="$zmtp bench proxy-sub" need no $BENCH.
read -r -a pub_cmd <<<"${PUB:-$bench/proxy_pub}"
read -r -a sub_cmd <<<"${SUB:-$bench/proxy_sub}"
ulimit -n "$(ulimit -Hn)"
port=$((26000 + RANDOM % 3000))
xsub="tcp://127.0.0.1:$port"
xpub="tcp://127.0.0.1:$((port + 1))"
out=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

start_proxy() {
    case "$impl" in
    swift) "$zmtp" proxy --xsub "$xsub" --xpub "$xpub" --xpub-nodrop --io-threads "$io_threads" --linger 0 2>>"$out/proxy.err" & ;;
    libzmq) "$bench/proxy_dev" "$xsub" "$xpub" --timeout 3600 2>>"$out/proxy.err" & ;;
    *) echo "unknown implementation '$impl' (swift or libzmq)" >&2; exit 2 ;;
    esac
    proxy=$!
    for _ in $(seq 100); do ss -ltn | grep -q ":$((port + 1)) " && break; sleep 0.05; done
    sleep 0.5
}
stop_proxy() {  # SIGINT, then SIGKILL after 5 s (libzmq's proxy_dev can hang in zmq_ctx_term here)
    kill -INT "$proxy" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$proxy" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$proxy" 2>/dev/null || true
    wait "$proxy" 2>/dev/null || true
}
start_proxy

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$proxy/status"; }  # KiB
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$proxy/stat"; }  # utime + stime, 1/100 s
switches() { cat /proc/$proxy/task/*/status | awk '/ctxt_switches/ { n += $2 } END { print n }'; }
chain() {  # one run of libzmq's publisher -> proxy -> libzmq's subscriber; prints msgs/s
    "${sub_cmd[@]}" "$xpub" "$size" "$chain_count" --timeout 120 >"$out/chain" &
    local subscriber=$!
    sleep 0.3
    "${pub_cmd[@]}" "$xsub" "$size" "$chain_count" --timeout 120 &
    local publisher=$!
    wait "$subscriber"
    kill "$publisher" 2>/dev/null || true
    wait "$publisher" 2>/dev/null || true
    grep -o 'msgs_per_s=[0-9]*' "$out/chain" | cut -d= -f2
}

rss0=$(rss)
alone=$(chain)
echo "impl=$impl phase=alone rss_kib=$rss0 chain_msgs_per_s=$alone"

python3 "$here/scale-peers.py" "$xpub" --count "$peers" --topic-prefix idle. --hold 100000 >"$out/idle" &
idle=$!
for _ in $(seq 1200); do grep -q connected= "$out/idle" && break; kill -0 "$idle" 2>/dev/null || break; sleep 0.1; done
grep -q connected= "$out/idle" || { echo "idle peers failed to connect" >&2; exit 1; }
accept_s=$(grep -o 'seconds=[0-9.]*' "$out/idle" | cut -d= -f2)
sleep 3
rss1=$(rss)
t0=$(ticks); c0=$(switches)
sleep "$idle_seconds"
t1=$(ticks); c1=$(switches)
cpu=$(awk -v t="$((t1 - t0))" -v s="$idle_seconds" 'BEGIN { printf "%.2f", t / s }')  # % of one CPU
echo "impl=$impl phase=idle peers=$peers connect_all_s=$accept_s rss_kib=$rss1" \
    "per_connection_kib=$(awk -v a="$rss1" -v b="$rss0" -v n="$peers" 'BEGIN { printf "%.1f", (a - b) / n }')" \
    "idle_cpu_percent=$cpu idle_context_switches_per_s=$(( (c1 - c0) / idle_seconds ))"

loaded=$(chain)
echo "impl=$impl phase=loaded peers=$peers chain_msgs_per_s=$loaded rss_kib=$(rss)"
kill "$idle"; wait "$idle" 2>/dev/null || true
# A fresh proxy for the fan-out: libzmq's zmq_proxy still held 3,990 of the 10,000 idle peers'
# subscriptions seconds after they left (BENCHMARKS.md, "Scale"), and its publisher would start on
# one of those instead of the fan-out subscribers' (proxy_pub starts at the first subscription).
stop_proxy
port=$((port + 2)); xsub="tcp://127.0.0.1:$port"; xpub="tcp://127.0.0.1:$((port + 1))"
start_proxy

python3 "$here/scale-peers.py" "$xpub" --count "$active" --subscribe-all --expect-messages "$fanout_count" \
    --message-size "$size" --timeout 300 >"$out/fanout" &
fan=$!
for _ in $(seq 600); do grep -q connected= "$out/fanout" && break; kill -0 "$fan" 2>/dev/null || break; sleep 0.1; done
sleep 1
"${pub_cmd[@]}" "$xsub" "$size" "$fanout_count" --timeout 300 &
publisher=$!
wait "$fan" || { echo "fan-out run failed: $(cat "$out/fanout")" >&2; exit 1; }
rss2=$(rss)
echo "impl=$impl phase=fanout subscribers=$active messages=$fanout_count $(grep delivered= "$out/fanout") rss_kib=$rss2"

kill "$publisher" 2>/dev/null || true
wait "$publisher" 2>/dev/null || true
# A fresh proxy again: freed memory stays in a process's RSS, and would hide the growth.
stop_proxy
port=$((port + 2)); xsub="tcp://127.0.0.1:$port"; xpub="tcp://127.0.0.1:$((port + 1))"
start_proxy
rss3=$(rss)
python3 "$here/scale-peers.py" "$xpub" --count "$active" --subscribe-all --stall --hold 100000 >"$out/stalled" &
stalled=$!
for _ in $(seq 600); do grep -q connected= "$out/stalled" && break; kill -0 "$stalled" 2>/dev/null || break; sleep 0.1; done
sleep 1
"${pub_cmd[@]}" "$xsub" "$size" "$stall_count" --timeout 300 &
publisher=$!
sleep "$stall_seconds"
rss4=$(rss)
echo "impl=$impl phase=stalled subscribers=$active published_up_to=$stall_count rss_kib=$rss4" \
    "per_stalled_subscriber_kib=$(awk -v a="$rss4" -v b="$rss3" -v n="$active" 'BEGIN { printf "%.1f", (a - b) / n }')"
