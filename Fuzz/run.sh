#!/usr/bin/env bash
# Build the libFuzzer targets (release: optimized, but Swift keeps its overflow and bounds checks;
# AddressSanitizer on) and run one for a while.
#   Fuzz/run.sh TARGET SECONDS      e.g. Fuzz/run.sh FuzzFrameDecoder 60
#   Fuzz/run.sh build               build all targets only
#   Fuzz/run.sh list                list the targets
# The working corpus grows in Fuzz/work/TARGET (not committed); seeds come from Fuzz/Corpus/TARGET.
# A crash or invariant violation is written to Fuzz/FailCases/TARGET/ (commit it: the unit tests
# replay every file there) and the script exits non-zero. The last line printed is the target's
# execution count, for the record.
set -euo pipefail
cd "$(dirname "$0")"
targets=(FuzzFrameDecoder FuzzHandshakeServer FuzzHandshakeClient FuzzMetadata FuzzCommand FuzzZ85
         FuzzCurveServer FuzzCurveClient FuzzCurveMessage FuzzZAP)

build() {
    swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 1>&2
}

case "${1:-}" in
    list) printf '%s\n' "${targets[@]}"; exit 0 ;;
    build) build; exit 0 ;;
    "") echo "usage: Fuzz/run.sh TARGET SECONDS | build | list" >&2; exit 2 ;;
esac

target=$1
seconds=${2:-60}
if [[ ! " ${targets[*]} " =~ " ${target} " ]]; then
    echo "run.sh: unknown target '$target' (try: Fuzz/run.sh list)" >&2
    exit 2
fi
build
bin=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --show-bin-path)/$target
mkdir -p "work/$target" "FailCases/$target" "Corpus/$target"
log=$(mktemp)
set +e
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$bin" "work/$target" "Corpus/$target" \
    -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="FailCases/$target/" -print_final_stats=1 >"$log" 2>&1
status=$?
grep -E '^#[0-9]+ +(DONE|INITED)|ERROR|Fatal error|SUMMARY|^Running|artifact' "$log" || true
set -e
runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
echo "$target: ${runs:-?} executions in ${seconds}s (${rate:-?}/s), exit status $status"
rm -f "$log"
exit "$status"
