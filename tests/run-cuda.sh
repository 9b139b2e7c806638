#!/bin/sh
# tests/run-cuda.sh [DEBDIR [OUTDIR]] — the ONE script for a GPU machine
# with no network and none of our Debian libraries (the lent H200: nvcc,
# gcc, python3, no apt).  From a fresh checkout, in at most ~8 minutes:
#   1. unpacks every DEBDIR/*.deb (default debs/, made here by
#      scripts/fetch-debs.sh) with dpkg -x (or ar + tar) into build/debroot
#      and points CPATH / LIBRARY_PATH / LD_LIBRARY_PATH / PATH at it;
#   2. builds with HAVE_CUDA=1 (NVCC_ARCH from the environment, default 90);
#   3. runs tests/cuda/check.sh (what `make test-cuda` runs): the CUDA ops
#      against the reference backend (build/tests/test_backend_ops) and the
#      CPU-vs-CUDA train / resume / sample / score checks (tests/cuda/e2e.sh);
#   4. runs the GPU benchmarks, bench/gpu.sh (issue 11's item 6: ops, 124M
#      training with MFU, 1B sampling, each next to PyTorch), under a
#      timeout of what is left of DLLM_RUN_CUDA_BUDGET seconds (default
#      540); LLaDA's generate.py is taken from DEBDIR/llada_generate.py.
# Results: OUTDIR (default $OUT, else build/cuda-run) gets summary.txt,
# build.log, backend_ops.txt, e2e.txt, gpu-bench.txt and results.tar.gz
# (every log and output file) — at most 8 files, none deeper than OUTDIR,
# for the device tool's copy-back limits.  Last line of summary.txt: "N
# passed, N failed" (the tests; the bench does not count).
# Does not: install anything outside the checkout.
set -u
cd "$(dirname "$0")/.." || exit 3
R=$(pwd)
DEBS=${1:-debs}
[ -d "$DEBS" ] && DEBS=$(cd "$DEBS" && pwd)
O=${2:-${OUT:-build/cuda-run}}
mkdir -p "$O" build/cuda-run
O=$(cd "$O" && pwd)
W=$R/build/cuda-run
S=$O/summary.txt
: > "$S"
say() { echo "$*" | tee -a "$S"; }
t0=$(date +%s)
say "# run-cuda: $(date -u) on $(uname -n); $(nvidia-smi -L 2>/dev/null | head -n 1)"
say "# nvcc: $(nvcc --version 2>/dev/null | tail -n 1)  gcc: $(gcc -dumpfullversion 2>/dev/null)  git: $(git rev-parse --short HEAD 2>/dev/null)"

# 1. the libraries, unpacked privately
P=$R/build/debroot
mkdir -p "$P"
n=0
for f in "$DEBS"/*.deb; do
    [ -f "$f" ] || continue
    if command -v dpkg >/dev/null 2>&1; then dpkg -x "$f" "$P"
    else (d=$(mktemp -d) && cd "$d" && ar x "$f" && tar -xf data.tar.* -C "$P"; rm -rf "$d"); fi
    n=$((n + 1))
done
say "# unpacked $n .deb files from $DEBS into $P"
ML=x86_64-linux-gnu
L=$P/usr/lib/$ML:$P/usr/lib/$ML/openblas-pthread
export CPATH="$P/usr/include:$P/usr/include/$ML:$P/usr/include/$ML/openblas-pthread${CPATH:+:$CPATH}"
export LIBRARY_PATH="$L${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$P/usr/bin:$PATH"
export PKG_CONFIG_PATH="$P/usr/lib/$ML/pkgconfig:$P/usr/share/pkgconfig"
[ -e "$P/usr/bin/pkg-config" ] || ln -sf pkgconf "$P/usr/bin/pkg-config"

# NCCL: the GPU machine has none of its own, but its PyTorch wheels carry one
# (nvidia/.../nccl.h, libnccl.so.2); exposed for the build when found, so
# dllm-train gets --comm nccl (e2e.sh step 6: one rank).  The Makefile
# test-links it first and leaves NCCL out when that fails.
if [ "${DLLM_RUN_CUDA_NCCL:-1}" = 1 ]; then
    SP=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
    H=$(find $SP -path '*nvidia*' -name nccl.h 2>/dev/null | head -n 1)
    if [ -n "$H" ]; then
        NI=$(dirname "$H"); NL=$(dirname "$NI")/lib
        if [ -e "$NL/libnccl.so.2" ]; then
            mkdir -p "$R/build/ncclroot" && ln -sf "$NL/libnccl.so.2" "$R/build/ncclroot/libnccl.so"
            export CPATH="$CPATH:$NI" LIBRARY_PATH="$LIBRARY_PATH:$R/build/ncclroot" LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$NL"
            say "# NCCL from the PyTorch wheels: $NI"
        fi
    fi
fi

# 2. build (CUDA required: a build without it would test nothing here)
J=$(nproc 2>/dev/null || echo 4)
if timeout 300 make -j"$J" HAVE_CUDA=1 EMU_OK=0 > "$O/build.log" 2>&1; then   # EMU_OK=0: the CPU emulation of the kernels is for machines without a GPU
    say "# build: ok ($(($(date +%s) - t0)) s so far); $(grep '^\[x\] CUDA' "$O/build.log"); $(grep '^\[.\] NCCL' "$O/build.log")"
else
    say "not ok - build failed (exit $?): $(grep -m 3 -i 'error' "$O/build.log" | tr '\n' ' ')"
    say "0 passed, 1 failed"
    exit 1
fi

# 3. the GPU tests
timeout 420 tests/cuda/check.sh "$W" > "$W/check.txt" 2>&1
rc=$?
cat "$W/check.txt" >> "$S"
cp "$W/backend_ops.txt" "$O/backend_ops.txt" 2>/dev/null
cp "$W/e2e.txt" "$O/e2e.txt" 2>/dev/null
say "# check.sh exit $rc; $(($(date +%s) - t0)) s so far"

# 4. the GPU benchmarks, in what is left of the budget
left=$((${DLLM_RUN_CUDA_BUDGET:-540} - ($(date +%s) - t0)))
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    say "# bench/gpu.sh skipped: no GPU"
elif [ "$left" -gt 60 ]; then
    DLLM_LLADA_GENERATE=${DLLM_LLADA_GENERATE:-$DEBS/llada_generate.py} timeout "$left" bench/gpu.sh "$W/gpu-bench" \
        > "$W/gpu-bench.log" 2>&1
    say "# bench/gpu.sh exit $? ($(($(date +%s) - t0)) s in all)"
    cp "$W/gpu-bench/summary.txt" "$O/gpu-bench.txt" 2>/dev/null
else
    say "# bench/gpu.sh skipped: $left s of DLLM_RUN_CUDA_BUDGET left"
fi
# logs and small outputs only: checkpoints and streams (gigabytes if a bench was cut off) stay behind
tar -czf "$O/results.tar.gz" --exclude='*.safetensors' --exclude='*.msgpack' --exclude='*.bin' -C "$R/build" cuda-run \
    2>/dev/null
tail -n 1 "$W/check.txt" | tee -a "$S"
exit $rc
