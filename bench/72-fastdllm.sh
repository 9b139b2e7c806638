#!/bin/sh
# bench/72-fastdllm.sh — diffusion sampling, dllm-sample against Fast-dLLM's
# own PyTorch samplers (generate / generate_with_prefix_cache /
# generate_with_dual_cache) on the same random 85M LLaDA checkpoint (built
# with Fast-dLLM's model code), same settings and NFE, in the same run
# (issue 12): one line per --cache none | prefix | dual with tokens/s of
# both, the ratio, NFE both, and whether the ids are identical.  Details:
# bench/fastdllm_speed.py.
# Needs the venv's torch + transformers (DLLM_VENV) and Fast-dLLM's llada
# directory: DLLM_FASTDLLM_SRC, or extracted here from a bare git mirror
# (DLLM_FASTDLLM_MIRROR, default /work/.mirror/NVlabs+Fast-dLLM/repo);
# without them the lines are skipped (exit 0).
# Overrides: DLLM_BENCH_FD_DIM / _LAYERS / _HEADS / _MLP (shape, default
# 768 / 12 / 12 / 2048), _GEN / _STEPS / _BLOCK (128 / 128 / 32), _THREADS
# (2), _CACHES ("none,prefix,dual"); DLLM_BENCH_FD_SMOKE=1: a tiny model
# in seconds (checks the script; its timings mean nothing).
# Numbers are as measured on whatever else runs on the machine.
cd "$(dirname "$0")/.." || exit 3
[ -x bin/dllm-sample ] || { echo "fastdllm: bin/dllm-sample is not built (make first): skipped"; exit 0; }
PY=${DLLM_VENV:-$(cd .. && pwd)/venv}/bin/python
if ! [ -x "$PY" ] || ! "$PY" -c "import torch, transformers" 2>/dev/null; then
    echo "fastdllm: no torch + transformers at $PY (bench/setup-venv.sh): skipped"; exit 0
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/dllm-bench-fastdllm.XXXXXX") || exit 3
trap 'rm -rf "$W"' EXIT
SRC=${DLLM_FASTDLLM_SRC:-}
if [ -z "$SRC" ]; then
    M=${DLLM_FASTDLLM_MIRROR:-/work/.mirror/NVlabs+Fast-dLLM/repo}
    # git may complain about objects outside llada/ in a partial mirror: judged by the files below
    [ -d "$M" ] && git -C "$M" archive HEAD llada 2>/dev/null | tar -x -C "$W" 2>/dev/null
    SRC=$W/llada
fi
if ! [ -f "$SRC/generate.py" ] || ! [ -f "$SRC/model/modeling_llada.py" ]; then
    echo "fastdllm: no Fast-dLLM source (set DLLM_FASTDLLM_SRC to its llada directory): skipped"; exit 0
fi
set -- --src "$SRC" --work "$W/run"
[ "${DLLM_BENCH_FD_SMOKE:-0}" = 1 ] && set -- "$@" --smoke
for v in DIM:dim LAYERS:layers HEADS:heads MLP:mlp GEN:gen-length STEPS:steps BLOCK:block-length \
         THREADS:threads CACHES:caches; do
    val=$(eval echo "\${DLLM_BENCH_FD_${v%%:*}:-}")
    [ -n "$val" ] && set -- "$@" "--${v#*:}" "$val"
done
"$PY" bench/fastdllm_speed.py "$@" || { echo "fastdllm: bench/fastdllm_speed.py failed"; exit 1; }
