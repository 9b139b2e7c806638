#!/bin/sh
# tests/cli/build.sh — the Makefile tells the truth:
#   - -march=x86-64-v2 only when $(CC) targets x86-64: a compiler that says
#     "aarch64-linux-gnu" (a stub answering -dumpmachine) gets no -march;
#   - CUDA/NCCL/MPI are never announced as used while no code uses them;
#   - every object depends on build/config.stamp, so a changed HAVE_* or
#     CFLAGS rebuilds it (make -n -W: "as if the stamp were new"), and an
#     unchanged configuration leaves the stamp alone.
# Runs make only with -n / print-flags: nothing is built or changed.  Under
# `make test VAR=...` the same overrides reach these makes (the part of
# MAKEFLAGS after "--"), so the stamp they compute is the build's own.
. "$(dirname "$0")/lib.sh"
MAKEFLAGS=$(printf '%s' "${MAKEFLAGS:-}" | sed -n 's/^.*\(-- .*\)$/\1/p')
export MAKEFLAGS
unset MAKELEVEL MFLAGS
cd "$ROOT" || exit 3

flags=$(make -s print-flags)
case $(cc -dumpmachine) in
x86_64-*) case $flags in *-march=x86-64-v2*) ok "x86-64 compiler: -march=x86-64-v2" ;;
          *) notok "x86-64 compiler: -march=x86-64-v2" "$flags" ;; esac ;;
*) skip "x86-64 compiler: -march=x86-64-v2" "this compiler does not target x86-64" ;;
esac
printf '#!/bin/sh\n[ "$1" = -dumpmachine ] && { echo aarch64-linux-gnu; exit 0; }\nexec cc "$@"\n' > "$T/arm-cc"
chmod +x "$T/arm-cc"
flags=$(make -s print-flags CC="$T/arm-cc")
case $flags in
*aarch64-linux-gnu*-march*|*-march=x86*) notok "aarch64 compiler: no x86 -march" "$flags" ;;
*aarch64-linux-gnu*) ok "aarch64 compiler: no x86 -march" ;;
*) notok "aarch64 compiler: no x86 -march" "target not seen: $flags" ;;
esac

make -n all > "$T/n.out" 2> "$T/n.err"
for part in CUDA NCCL MPI; do
    line=$(grep "\] $part:" "$T/n.out" "$T/n.err" | head -n 1)
    case $line in
    *"[x]"*"not used yet"*|*"[ ]"*) ok "$part: not announced as used (${line#*] })" ;;
    "") notok "$part: checklist line" "missing" ;;
    *) if [ "$part" = CUDA ] && ls kernels/cuda/*.cu > /dev/null 2>&1; then ok "$part: used by kernels/cuda"
       elif [ "$part" != CUDA ] && grep -rlsw "DL_HAVE_$part" share kernels train > /dev/null; then
           ok "$part: used by $(grep -rlsw "DL_HAVE_$part" share kernels train | head -n 1)"
       else notok "$part: not announced as used" "$line"; fi ;;
    esac
done

stamp=${DLLM_BUILD:-build}/config.stamp
if [ -f "$stamp" ]; then
    before=$(ls -l --time-style=full-iso "$stamp")
    make -n all > /dev/null 2>&1
    is "an unchanged configuration leaves config.stamp alone" "$(ls -l --time-style=full-iso "$stamp")" "$before"
    make -n -W "$stamp" all > "$T/w.out" 2>&1
    check "a new config.stamp rebuilds library objects" "grep -q -- '-c share/io/dl_opts.c' '$T/w.out'"
    check "a new config.stamp rebuilds program objects" "grep -q -- '-c pack/main.c' '$T/w.out'"
    check "a new config.stamp relinks unit tests" "grep -q -- 'tests/unit/test_opts.c' '$T/w.out'"
    check "config.stamp records the HAVE_* results" "grep -q 'CUDA=[01] NCCL=[01] MPI=[01]' '$stamp'"
else
    skip "config.stamp" "not built yet (make first)"
fi
