#!/bin/sh
# scripts/fetch-debs.sh [DIR] — download (apt-get download, no install, no
# root) the Debian 12 packages of dllm's libraries into DIR (default debs/),
# for a machine with no network and none of them: tests/run-cuda.sh DIR
# unpacks them there with dpkg -x into a private prefix.
# The list is fixed and explicit (headers, the shared libraries, their
# library dependencies, the zstd and pkg-config tools), not a dependency
# walk: the GPU machine has a C toolchain, glibc, libgomp and python3.
# Also LLaDA's own generate.py into DIR/llada_generate.py when a git
# repository of ML-GSAI/LLaDA is at $LLADA_GIT (default: the mirror
# ../.mirror/ML-GSAI+LLaDA/repo beside the checkout): bench/gpu.sh times it
# as the sampling reference (its port in bench/gpu_sample_ref.py otherwise).
# Does not: install anything, or fetch CUDA (the GPU machine has its own).
set -eu
llada=${LLADA_GIT:-$(cd "$(dirname "$0")/../.." && pwd)/.mirror/ML-GSAI+LLaDA/repo}
dir=${1:-debs}
mkdir -p "$dir"
cd "$dir"
pkgs="libmsgpack-dev libmsgpackc2 libmsgpack-cxx-dev
      libzstd-dev libzstd1 zstd
      libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
      libutf8proc-dev libutf8proc2
      libjansson-dev libjansson4
      libopenblas-dev libopenblas-pthread-dev libopenblas0 libopenblas0-pthread libgfortran5 libquadmath0
      pkg-config pkgconf pkgconf-bin libpkgconf3"
# apt-get download fails on an out-of-date package list: refresh once, retry
apt-get download $pkgs >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 || true; apt-get download $pkgs; }
if git --git-dir="$llada" show HEAD:generate.py > llada_generate.py 2>/dev/null; then
    echo "fetch-debs: LLaDA's generate.py ($(git --git-dir="$llada" rev-parse --short HEAD)) -> $(pwd)/llada_generate.py"
else
    rm -f llada_generate.py
    echo "fetch-debs: no LLaDA repository at $llada (LLADA_GIT): bench/gpu.sh will time its port of generate()"
fi
n=$(ls ./*.deb | wc -l)
echo "fetch-debs: $n .deb files in $(pwd) ($(du -sh . | cut -f1))"
