#!/bin/sh
# tests/cli/experiments.sh — `make smoke` of every experiments/*/Makefile (a
# shrunken end-to-end run: raw text -> tokens -> rows -> training -> scoring ->
# table and PNG plot), each twice, with THREADS=1 and THREADS=2, into this
# test's temp dir; the tables (results.tsv, results.md, samples.md where made)
# must be byte-identical: no number may depend on the thread count.
# Skipped when gnuplot is missing (scripts/deps.sh install experiments).
# It does NOT check the numbers themselves (docs/results.md is for those).
. "$(dirname "$0")/lib.sh"

if ! command -v gnuplot > /dev/null 2>&1; then
    skip "experiments smoke" "gnuplot is missing (scripts/deps.sh install experiments)"; exit 0
fi
if [ ! -x "$BIN/dllm-train" ] || [ ! -x "$BIN/dllm-score" ]; then skip "experiments smoke" "programs not built"; exit 0; fi
# the outer make's flags (jobserver, -k, ...) are not the experiments'
unset MAKEFLAGS MFLAGS MAKELEVEL
# No OMP_WAIT_POLICY here: the programs' own thread pool waits briefly and
# never for a descheduled worker (kernels/cpu/pool.c, issue 15); on a busy
# 2-core machine libgomp's default spinning had made THREADS=2 ~15x slower
# (17 s vs 1 s).
for e in conversion ar-vs-diffusion reversal; do
    for j in 1 2; do
        start=$(date +%s)
        check "$e: make smoke THREADS=$j" "make -s -C '$ROOT/experiments/$e' BIN='$BIN' SMOKE_OUT='$T/$e-$j' THREADS=$j smoke > '$T/$e-$j.log' 2>&1 || { tail -n 20 '$T/$e-$j.log' >&2; exit 1; }"
        echo "# $e THREADS=$j: $(( $(date +%s) - start )) s"
    done
    for f in results.tsv results.md samples.md; do
        [ -e "$T/$e-1/$f" ] || [ -e "$T/$e-2/$f" ] || continue
        same "$T/$e-1/$f" "$T/$e-2/$f" "$e: $f the same with 1 and 2 threads"
    done
    check "$e: plot written (PNG)" "head -c 8 '$T/$e-2/'*.png | od -c | grep -q 'P   N   G'"
done
