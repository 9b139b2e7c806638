#!/bin/sh
# tests/cuda/check.sh [OUTDIR] — `make test-cuda`: the GPU tests.  Without a
# visible GPU it prints "skipped: no GPU" and exits 0.  With one:
#   1. build/tests/test_backend_ops: every CUDA op against the reference
#      backend (its "cuda" lines; a GPU that is visible but does not open
#      is a failure), one process per op, so an abort costs one op's lines;
#      attention once more with DLLM_CUDA_ATTN=fma ("cuda(fma)" lines): both
#      twins, the FMA kernels and the tensor-core ones, against ref; and
#      the linear ops with DLLM_CUDA_GEMM=ex ("cuda(gemmex)" lines):
#      cublasGemmEx, the fallback of a shape cuBLASLt has no algorithm for;
#   2. tests/cuda/e2e.sh: train / resume / sample / score, CPU vs CUDA.
# Results (every log) under OUTDIR (default build/cuda-test).  Last line
# "N passed, N failed, 0 skipped" like tests/run.sh; exit 1 on any failure.
cd "$(dirname "$0")/../.." || exit 3
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "skipped: no GPU (nvidia-smi lists none)"
    exit 0
fi
O=${1:-build/cuda-test}
mkdir -p "$O"
nvidia-smi -L > "$O/gpu.txt" 2>&1
# op by op (DLLM_OPS_ONLY), so that a kernel that aborts loses its own op only
: > "$O/backend_ops.txt"
ops() {   # ops LABEL OP [VAR=VALUE...]: OP's CUDA cases, "cuda" relabelled LABEL, an abort or timeout a "not ok"
    label=$1 op=$2; shift 2
    env "$@" DLLM_OPS_ONLY=$op DLLM_OPS_BACKEND=cuda DLLM_BUILD=build timeout 120 build/tests/test_backend_ops \
        > "$O/ops.${label}.$op.txt" 2>&1
    rc=$?
    sed "s/^\(n*o*t* *ok\) - cuda /\1 - $label /" "$O/ops.${label}.$op.txt" >> "$O/backend_ops.txt"
    [ $rc -ne 0 ] && echo "not ok - $label $op: test_backend_ops exit $rc (an abort or a timeout: see the lines above)" \
        >> "$O/backend_ops.txt"
}
for op in $(DLLM_OPS_LIST=1 build/tests/test_backend_ops); do ops cuda "$op"; done
# the attention ops again with the tensor-core twin off: the FMA kernels on the bf16 cases too
for op in attention_fwd attention_bwd; do ops "cuda(fma)" "$op" DLLM_CUDA_ATTN=fma; done
# the linear ops again through cublasGemmEx (every GEMM goes through cuBLASLt otherwise)
for op in linear_fwd linear_bwd; do ops "cuda(gemmex)" "$op" DLLM_CUDA_GEMM=ex; done
grep '^skip - cuda\|^not ok - cuda' "$O/backend_ops.txt" | head -n 40
bp=$(grep -c '^ok - cuda' "$O/backend_ops.txt"); bf=$(grep -c '^not ok - cuda\|^skip - cuda' "$O/backend_ops.txt")
echo "# backend ops: $bp cuda cases ok, $bf not"
timeout 400 tests/cuda/e2e.sh "$O/e2e" > "$O/e2e.txt" 2>&1
cat "$O/e2e.txt"
ep=$(grep -c '^ok - ' "$O/e2e.txt"); ef=$(grep -c '^not ok - ' "$O/e2e.txt")
[ "$ep" -eq 0 ] && [ "$ef" -eq 0 ] && ef=1 && echo "not ok - e2e: no result (see $O/e2e.txt)"
echo "$((bp + ep)) passed, $((bf + ef)) failed, 0 skipped"
[ $((bf + ef)) -eq 0 ]
