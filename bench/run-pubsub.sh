#!/usr/bin/env bash
# Publish/subscribe throughput and matching cost, swift-zmtp against libzmq, interleaved.
#
#   bench/run-pubsub.sh [--reps N] [--quick] [--zmtp PATH]
#
# Builds bench/pubsub (libzmq) and uses .build/release/zmtp (build it first:
# `swift build -c release --product zmtp`). For every cell and repetition it runs, back to back:
#   A  libzmq publisher -> libzmq subscribers
#   B  swift-zmtp publisher -> swift-zmtp subscribers
#   C  swift-zmtp publisher -> libzmq subscribers (the publisher alone, against libzmq's receive side)
# and prints the median msgs/s of each with the ratios B/A and C/A, then the matching cost (ns per
# publish that matches none of the installed subscriptions) of both. Loopback only; TCP ports
# 23100-23999. --quick runs one short repetition (a smoke test for CI; its numbers mean nothing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
reps=5
quick=0
zmtp="$root/.build/release/zmtp"
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps="$2"; shift 2 ;;
        --quick) quick=1; reps=1; shift ;;
        --zmtp) zmtp="$2"; shift 2 ;;
        *) echo "usage: $0 [--reps N] [--quick] [--zmtp PATH]" >&2; exit 2 ;;
    esac
done
make -s -C "$here" pubsub
[ -x "$zmtp" ] || { echo "$0: $zmtp not found; run: swift build -c release --product zmtp" >&2; exit 1; }
lib="$here/pubsub"
port=23100
results="$(mktemp)"
trap 'rm -f "$results"' EXIT

# One run: PUB-CMD SUB-CMD SIZE COUNT SUBSCRIBERS TOPICS -> msgs/s (from the subscriber's RESULT line)
run_pair() {
    local pub="$1" sub="$2" size="$3" count="$4" subscribers="$5" topics="$6"
    port=$((port + 1)); [ "$port" -gt 23999 ] && port=23100
    local endpoint="tcp://127.0.0.1:$port"
    $pub "$endpoint" "$size" "$count" "$subscribers" --topics "$topics" --timeout 60 &
    local publisher=$!
    for _ in $(seq 100); do ss -ltn "sport = :$port" | grep -q LISTEN && break; sleep 0.02; done
    local line
    line="$($sub "$endpoint" "$size" "$count" "$subscribers" --topics "$topics" --timeout 60)"
    wait "$publisher"
    sed 's/.* msgs_per_s=\([0-9]*\).*/\1/' <<<"$line"
}

# Cells: SUBSCRIBERS TOPICS-PER-SUBSCRIBER COUNT (64-byte messages over tcp).
cells=("1 1 2000000" "10 1 300000" "100 1 30000" "1 10000 2000000" "10 1000 300000")
[ "$quick" = 1 ] && cells=("1 1 20000" "10 1000 2000")
for rep in $(seq "$reps"); do
    for cell in "${cells[@]}"; do
        read -r subscribers topics count <<<"$cell"
        a="$(run_pair "$lib pub" "$lib sub" 64 "$count" "$subscribers" "$topics")"
        b="$(run_pair "$zmtp bench ps-pub" "$zmtp bench ps-sub" 64 "$count" "$subscribers" "$topics")"
        c="$(run_pair "$zmtp bench ps-pub" "$lib sub" 64 "$count" "$subscribers" "$topics")"
        echo "thr $subscribers $topics $a $b $c" >>"$results"
    done
    for topics in 1 10000; do
        count=5000000; [ "$quick" = 1 ] && count=10000
        port=$((port + 1))
        a="$("$lib" match "ipc:///tmp/zmtp-match-$$.sock" 64 "$count" "$topics" | sed 's/.* ns_per_msg=\([0-9.]*\).*/\1/')"
        b="$("$zmtp" bench ps-match "ipc:///tmp/zmtp-match-$$.sock" 64 "$count" "$topics" | sed 's/.* ns_per_msg=\([0-9.]*\).*/\1/')"
        echo "match 1 $topics $a $b $b" >>"$results"
    done
    echo "repetition $rep of $reps done" >&2
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, subs, topics, a, b, c = line.split()
    rows.setdefault((kind, int(subs), int(topics)), []).append((float(a), float(b), float(c)))
print("| test | subscribers | subscriptions at the publisher | libzmq→libzmq | swift→swift | swift→libzmq | swift/libzmq | swift pub/libzmq pub |")
print("|---|---|---|---|---|---|---|---|")
for (kind, subs, topics), samples in sorted(rows.items(), key=lambda item: (item[0][0] != "thr", item[0])):
    a, b, c = (statistics.median(s[i] for s in samples) for i in range(3))
    if kind == "thr":
        print(f"| publish 64 B, msgs/s | {subs} | {subs * topics} | {a:,.0f} | {b:,.0f} | {c:,.0f} | {b / a:.2f} | {c / a:.2f} |")
    else:
        print(f"| match, ns per message (lower is better) | 1 | {topics} | {a:.1f} | {b:.1f} | | {a / b:.2f} | |")
print(f"\n{len(next(iter(rows.values())))} repetitions, medians; ratios > 1 mean swift-zmtp is faster.")
PY
