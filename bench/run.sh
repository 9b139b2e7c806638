#!/bin/sh
# bench/run.sh — `make bench`.  Every line prints our figure, the reference
# figure measured on the same machine in the same run, and the ratio.
# References run in a Python virtual environment outside the repo
# (DLLM_VENV, default ../venv; create it with bench/setup-venv.sh).
cd "$(dirname "$0")/.." || exit 3
export DLLM_VENV=${DLLM_VENV:-$(cd .. && pwd)/venv}
echo "dllm bench — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
[ -x "$DLLM_VENV/bin/python" ] || echo "note: no venv at $DLLM_VENV (bench/setup-venv.sh makes one): Python references are skipped"
rc=0
for b in bench/[0-9]*.sh; do
    [ -e "$b" ] || continue
    sh "$b" || { echo "bench: $b failed"; rc=1; }
done
exit $rc
