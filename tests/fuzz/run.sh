#!/bin/sh
# tests/fuzz/run.sh — run every libFuzzer target of build-fuzz/ for N seconds
# (`make fuzz FUZZ_SECONDS=N` calls it after building them).
#   tests/fuzz/run.sh N [NAME...]    default: every build-fuzz/fuzz_*
# Each target fuzz_NAME starts from its committed seeds tests/fuzz/corpus/NAME/
# (never written; a missing one is an error) plus build-fuzz/corpus/fuzz_NAME/
# (what earlier runs found; new inputs go there).  Reproducers of findings go to build-fuzz/crashes/NAME-*, logs to
# build-fuzz/logs/NAME.log.  Extra libFuzzer flags: FUZZ_FLAGS.
# Last line: "N targets, N executions, N crashes" (executions summed from
# libFuzzer's stat::number_of_executed_units); exit 1 on any finding, after
# printing each reproducer's path and the log's last lines.
cd "$(dirname "$0")/../.." || exit 3
secs=${1:?usage: tests/fuzz/run.sh SECONDS [NAME...]}
shift
names=$*
[ -n "$names" ] || names=$(cd build-fuzz 2>/dev/null && ls fuzz_* 2>/dev/null | grep -v '\.d$')
[ -n "$names" ] || { echo "run.sh: no targets in build-fuzz/ (make fuzz)" >&2; exit 3; }
mkdir -p build-fuzz/logs build-fuzz/crashes
# Leaks count as findings; a UBSan report stops the run (the targets are also
# built with -fno-sanitize-recover=undefined).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
targets=0; execs=0; crashes=0
for n in $names; do
    mkdir -p "build-fuzz/corpus/$n"
    # seeds are named by the target without its prefix (corpus/stream for fuzz_stream)
    seeds=tests/fuzz/corpus/${n#fuzz_}
    [ -d "$seeds" ] || { echo "run.sh: no seeds $seeds for $n" >&2; exit 3; }
    log=build-fuzz/logs/$n.log
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: libFuzzer's
    # default, so a small input that allocates gigabytes is a finding.
    "build-fuzz/$n" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="build-fuzz/crashes/$n-" $FUZZ_FLAGS "build-fuzz/corpus/$n" $seeds > "$log" 2>&1
    rc=$?
    e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    targets=$((targets + 1)); execs=$((execs + ${e:-0}))
    if [ "$rc" -ne 0 ]; then
        crashes=$((crashes + 1))
        echo "FINDING $n (exit $rc, log $log):"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant|.*runtime error)' "$log" | head -n 5 | sed 's/^/    /'
        sed -n 's/.*Test unit written to \(.*\)/    reproducer: \1/p' "$log"
    else
        t=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
        echo "ok $n: ${e:-0} executions in ${t:-$secs} s"
    fi
done
echo "$targets targets, $execs executions, $crashes crashes"
[ "$crashes" -eq 0 ]
