#!/bin/sh
# scripts/fetch-debs.sh [DIR] — download (apt-get download, no install, no
# root) the Debian 12 packages of dllm's libraries into DIR (default debs/),
# for a machine with no network and none of them: tests/run-cuda.sh DIR
# unpacks them there with dpkg -x into a private prefix.
# The list is fixed and explicit (headers, the shared libraries, their
# library dependencies, the zstd and pkg-config tools), not a dependency
# walk: the GPU machine has a C toolchain, glibc, libgomp and python3.
# Does not: install anything, or fetch CUDA (the GPU machine has its own).
set -eu
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
n=$(ls ./*.deb | wc -l)
echo "fetch-debs: $n .deb files in $(pwd) ($(du -sh . | cut -f1))"
