#!/bin/sh
# bench/setup-venv.sh — make the Python virtual environment that holds the
# reference implementations for `make bench` and tests/ref/ (never needed by
# `make test`).  DLLM_VENV defaults to ../venv (outside the repo).
set -eu
cd "$(dirname "$0")/.."
V=${DLLM_VENV:-$(cd .. && pwd)/venv}
python3 -m venv "$V"
"$V/bin/pip" install -q tokenizers numpy msgpack zstandard torch lm-eval transformers accelerate peft safetensors
echo "venv ready: $V"
