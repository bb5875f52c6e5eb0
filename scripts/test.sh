#!/usr/bin/env bash
# Runs every test swift-zmtp has, installing what they need first:
#   1. swift test: unit tests, fuzz corpus/fail-case replay, and the libzmq (pyzmq) interop tests;
#   2. a smoke run of the pub/sub benchmark against libzmq (bench/run-pubsub.sh --quick: it checks that
#      every role works; its figures mean nothing);
#   3. a smoke run of the proxy scale benchmark (bench/scale.sh with 300 idle peers and 30 active
#      subscribers: it checks that the phases work; BENCHMARKS.md's figures use 10,000 and 1,000);
#   4. the libFuzzer smoke runs: every target in Fuzz/ for FUZZ_SECONDS (default 30) seconds.
# Set FUZZ_SECONDS=0 to skip step 4 on a quick local run. CI runs everything (.ci/run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh test

swift test

bench/run-pubsub.sh --quick --zmtp "$(swift build --show-bin-path)/zmtp"

zmtp="$(swift build --show-bin-path)/zmtp"
ZMTP="$zmtp" PUB="$zmtp bench proxy-pub" SUB="$zmtp bench proxy-sub" IDLE_SECONDS=1 CHAIN_COUNT=20000 FANOUT_COUNT=200 \
    bench/scale.sh swift 300 30

seconds=${FUZZ_SECONDS:-30}
if [ "$seconds" != 0 ]; then
    Fuzz/run.sh build
    passed=0
    failed=0
    for target in $(Fuzz/run.sh list); do
        if Fuzz/run.sh "$target" "$seconds"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    done
    echo "fuzz: $passed passed, $failed failed"
    [ "$failed" = 0 ]
fi
