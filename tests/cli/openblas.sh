#!/bin/sh
# tests/cli/openblas.sh — OpenBLAS is opened at run time (kernels/cpu/openblas.c):
# the programs say which one on dllm-train's model line, DLLM_OPENBLAS names
# another, and one that cannot be loaded leaves the plain-C GEMM with one
# warning that says why (exit 0, output written), as does a library
# without cblas_sgemm.
. "$(dirname "$0")/lib.sh"

tiny_train_data 20
tiny32_config "$T/config.json"
train() {   # OUT ENV...: one training step, stderr to $T/OUT.err
    out=$1; shift
    env "$@" dllm-train --threads 1 --config "$T/config.json" "$T/train.msgpack" -o "$T/$out" --steps 1 --batch 2 \
        --seed 3 2> "$T/$out.err"
}
train ck -u DLLM_OPENBLAS || notok "train" "$(head -n 3 "$T/ck.err")"
if ! grep -q "OpenBLAS [0-9]" "$T/ck.err"; then
    skip "openblas" "this build has no OpenBLAS ($(grep -o 'cpu ([^)]*)' "$T/ck.err"))"
    exit 0
fi
is "default: no warning" "$(grep -c 'could not be loaded' "$T/ck.err")" "0"
train named DLLM_OPENBLAS=libopenblas.so.0 && ok "DLLM_OPENBLAS=libopenblas.so.0: runs" || notok "named" "$(head -n 3 "$T/named.err")"
is "DLLM_OPENBLAS=libopenblas.so.0: OpenBLAS in use" "$(grep -c 'OpenBLAS [0-9]' "$T/named.err")" "1"
train gone DLLM_OPENBLAS=/nonexistent/libopenblas.so.0 && ok "unloadable OpenBLAS: exit 0" ||
    notok "unloadable OpenBLAS: exit 0" "$(head -n 3 "$T/gone.err")"
is "unloadable OpenBLAS: one warning naming the file" \
   "$(grep -c 'warning: OpenBLAS could not be loaded (/nonexistent/libopenblas.so.0' "$T/gone.err")" "1"
is "unloadable OpenBLAS: the model line says plain-C GEMM" "$(grep -c 'plain-C GEMM: /nonexistent' "$T/gone.err")" "1"
check "unloadable OpenBLAS: checkpoint written" test -f "$T/gone/model.safetensors"
train nosym DLLM_OPENBLAS=libm.so.6 && ok "a library without cblas_sgemm: exit 0" ||
    notok "a library without cblas_sgemm: exit 0" "$(head -n 3 "$T/nosym.err")"
is "a library without cblas_sgemm: the warning names the symbol" \
   "$(grep -c 'warning: OpenBLAS could not be loaded (libm.so.6 has no cblas_sgemm)' "$T/nosym.err")" "1"
