#!/bin/sh
# tests/run.sh — runs every unit test binary (build/tests/test_*) and every CLI
# test script (tests/cli/*.sh).  Each prints TAP-like lines "ok - NAME",
# "not ok - NAME" or "skip - NAME: why"; a program that exits non-zero without
# printing "not ok" counts as one failure.  Last line: "N passed, N failed".
#   tests/run.sh [PATTERN]   only tests whose file name contains PATTERN
# Environment (set by make test / make test-asan): DLLM_BUILD (build dir of
# the unit tests, default build), DLLM_BIN (the programs, default bin/, read
# by tests/cli/lib.sh), DLLM_SAN_LOG (sanitizer reports land in
# DLLM_SAN_LOG.<pid>; any such file fails the test that produced it).
cd "$(dirname "$0")/.." || exit 3
build=${DLLM_BUILD:-build}
sanlog=${DLLM_SAN_LOG:-}
[ -n "$sanlog" ] && { mkdir -p "$(dirname "$sanlog")"; rm -f "$sanlog".*; }
pat=${1:-}
pass=0; fail=0; skip=0
log=${TMPDIR:-/tmp}/dllm-test.$$
trap 'rm -f "$log"' EXIT
for t in "$build"/tests/test_* tests/cli/*.sh; do
    [ -e "$t" ] || continue
    case "$t" in *.d|*/lib.sh) continue ;; esac
    [ -n "$pat" ] && case "$t" in *"$pat"*) ;; *) continue ;; esac
    start=$(date +%s)
    case "$t" in *.sh) sh "$t" > "$log" 2>&1 ;; *) "$t" > "$log" 2>&1 ;; esac
    rc=$?
    p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^not ok - ' "$log"); s=$(grep -c '^skip - ' "$log")
    if [ -n "$sanlog" ] && ls "$sanlog".* > /dev/null 2>&1; then
        for r in "$sanlog".*; do
            f=$((f + 1)); echo "not ok - $t: sanitizer report $r" >> "$log"
            head -n 40 "$r" | sed 's/^/    # /' >> "$log"
            mv "$r" "$(dirname "$sanlog")/kept.${t##*/}.${r##*.}"
        done
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; echo "not ok - $t exited with status $rc" >> "$log"
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    secs=$(( $(date +%s) - start ))
    if [ "$f" -gt 0 ]; then
        echo "FAIL $t ($p passed, $f failed, ${secs}s)"
        grep -v '^ok - ' "$log" | tail -n 40 | sed 's/^/    /'
    else
        echo "pass $t ($p passed${s:+, $s skipped}, ${secs}s)"
        grep '^skip - ' "$log" | sed 's/^/    /'
    fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
