#!/bin/sh
# tests/cli/omp_env.sh — how dllm-tok waits on shared cores (issue 15,
# share/io/dl_omp_env.c): with no OpenMP policy in the environment a program
# that uses OpenMP re-executes itself once with GOMP_SPINCOUNT set (same pid
# and name), before libgomp starts, so libgomp sees the value and starts
# once; programs without OpenMP do not re-execute; the user's own
# OMP_WAIT_POLICY / GOMP_SPINCOUNT win, DLLM_OMP_REEXEC=0 turns it off.
# Only dllm-tok uses OpenMP regions now; dllm-train, -sample and -score
# (kernels/cpu/pool.c) are not re-executed.  That results do not depend on
# threads or waiting: tests/cli/shared.sh.
. "$(dirname "$0")/lib.sh"

TOKJ=$ROOT/share/data/gpt2-tokenizer/tokenizer.json
# environment and name of a live program waiting on stdin for 1.5 s
env_of() {   # VAR=VALUE / -u VAR ... -- PROG ARGS: prints GOMP_SPINCOUNT's value (or "unset"), the
             # process name, and whether libgomp is loaded (gomp / nogomp)
    vars=""
    while [ "$1" != "--" ]; do vars="$vars $1"; shift; done
    shift
    ( sleep 1.5 | env $vars "$@" > /dev/null 2>&1 & pid=$!
      sleep 0.8
      v=$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | sed -n 's/^GOMP_SPINCOUNT=//p')
      g=nogomp; grep -q libgomp /proc/$pid/maps 2>/dev/null && g=gomp
      echo "${v:-unset} $(cat /proc/$pid/comm 2>/dev/null) $g"
      wait $pid )
}
# what libgomp itself read, one line per time it started: OMP_DISPLAY_ENV
gomp_saw() {   # PROG VAR=VALUE...
    prog=$1; shift
    env "$@" OMP_DISPLAY_ENV=verbose $prog --help 2>&1 > /dev/null | sed -n "s/.*GOMP_SPINCOUNT = '\([0-9]*\)'.*/\1/p" | tr '\n' ' '
}
if [ ! -r /proc/self/environ ]; then skip "omp_env" "no /proc"; exit 0; fi
want=$(sed -n 's/^#define DL_OMP_SPINCOUNT "\([0-9]*\)".*/\1/p' "$ROOT/share/io/dl_omp_env.h")
U="-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u DLLM_OMP_REEXEC"
is "no policy set: re-executed with GOMP_SPINCOUNT=$want, name kept" \
   "$(env_of $U -- dllm-tok -q -t "$TOKJ")" "$want dllm-tok gomp"
is "the user's OMP_WAIT_POLICY wins (no GOMP_SPINCOUNT added)" \
   "$(env_of -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive -- dllm-tok -q -t "$TOKJ")" "unset dllm-tok gomp"
is "the user's GOMP_SPINCOUNT wins" "$(env_of -u OMP_WAIT_POLICY GOMP_SPINCOUNT=77 -- dllm-tok -q -t "$TOKJ")" "77 dllm-tok gomp"
is "DLLM_OMP_REEXEC=0: libgomp's defaults" \
   "$(env_of $U DLLM_OMP_REEXEC=0 -- dllm-tok -q -t "$TOKJ")" "unset dllm-tok gomp"
# dllm-cat uses no OpenMP: a normal build does not load libgomp (sanitizer
# builds do), and it is not re-executed either way (no DL_OMP_ENV_EARLY)
got=$(env_of $U -- dllm-cat)
case $got in
    *" nogomp") is "dllm-cat, no libgomp loaded: not re-executed" "$got" "unset dllm-cat nogomp" ;;
    *) is "dllm-cat with libgomp loaded (sanitizer build): not re-executed" "$got" "unset dllm-cat gomp" ;;
esac
is "dllm-tok: libgomp started once, with GOMP_SPINCOUNT=$want" "$(gomp_saw dllm-tok $U)" "$want "
is "dllm-tok, user's GOMP_SPINCOUNT=77: libgomp read 77" "$(gomp_saw dllm-tok -u OMP_WAIT_POLICY GOMP_SPINCOUNT=77)" "77 "
# the model programs run their ops on their own pool (kernels/cpu/pool.c):
# no re-exec, libgomp keeps its defaults (for DLLM_POOL=openmp)
dflt=$(gomp_saw dllm-tok $U DLLM_OMP_REEXEC=0)   # libgomp's own default, as it prints it
for p in dllm-train dllm-sample dllm-score; do
    is "$p: not re-executed (libgomp started once, with its default ${dflt% })" "$(gomp_saw $p $U)" "$dflt"
done
