#!/bin/sh
# scripts/deps.sh — find and install the Debian packages dllm needs.
#   scripts/deps.sh check          print the missing packages (nothing if all present)
#   scripts/deps.sh install [PKG]  apt-get install them (as root, or through sudo)
#   scripts/deps.sh check fuzz     the optional part `make fuzz` needs: clang and
#   scripts/deps.sh install fuzz   its libFuzzer runtime (FUZZ_CC, default clang)
#   scripts/deps.sh check mpi      optional: OpenMPI (mpicc, mpirun) for data-parallel
#   scripts/deps.sh install mpi    dllm-train on CPU ranks (make then builds dl_comm_mpi.c)
#   scripts/deps.sh check slurm    optional: slurmctld, slurmd, munge for tests/cli/slurm.sh
#   scripts/deps.sh install slurm  (a single-node slurm started in a temporary directory)
#   scripts/deps.sh check experiments    the optional part experiments/ needs:
#   scripts/deps.sh install experiments  gnuplot (its plots; Debian gnuplot-nox)
# Detection is by compiling and linking a tiny program against each library
# (never by dpkg), so a library installed any other way counts as present.
set -u
CC=${CC:-cc}
tmp=${TMPDIR:-/tmp}/dllm-deps.$$
trap 'rm -f "$tmp" "$tmp.c"' EXIT

# try HEADER FUNCTION-CALL LIBS...  -> 0 when it compiles and links
try() {
    hdr=$1; call=$2; shift 2
    printf '#include <%s>\nint main(void){ %s; return 0; }\n' "$hdr" "$call" > "$tmp.c"
    $CC "$tmp.c" -o "$tmp" "$@" >/dev/null 2>&1
}

missing() {
    out=""
    command -v pkg-config >/dev/null 2>&1 || out="$out pkg-config"
    # msgpack-c: libmsgpack-c (>= 6) or libmsgpackc (Debian 12's libmsgpack-dev)
    try msgpack.h 'msgpack_sbuffer b; msgpack_sbuffer_init(&b)' -lmsgpack-c ||
        try msgpack.h 'msgpack_sbuffer b; msgpack_sbuffer_init(&b)' -lmsgpackc ||
        out="$out libmsgpack-dev"
    try zstd.h 'ZSTD_versionNumber()' -lzstd || out="$out libzstd-dev"
    try pcre2.h 'pcre2_config_8(0, 0)' -DPCRE2_CODE_UNIT_WIDTH=8 -lpcre2-8 || out="$out libpcre2-dev"
    try utf8proc.h 'utf8proc_version()' -lutf8proc || out="$out libutf8proc-dev"
    try jansson.h 'json_object()' -ljansson || out="$out libjansson-dev"
    try cblas.h 'cblas_sdot(0, 0, 1, 0, 1)' -lopenblas || out="$out libopenblas-dev"
    command -v zstd >/dev/null 2>&1 || out="$out zstd"
    command -v python3 >/dev/null 2>&1 || out="$out python3"
    # a C++20 compiler for tests/cuda/emu: the CUDA kernels run on the CPU in make test
    printf '#include <barrier>\nint main(){std::barrier<> b(1); b.arrive_and_wait(); return 0;}\n' > "$tmp.c"
    ${CXX:-g++} -std=c++20 -pthread -x c++ "$tmp.c" -o "$tmp" >/dev/null 2>&1 || out="$out g++"
    echo $out
}

# The fuzzing part: FUZZ_CC must build and link a libFuzzer target with
# the sanitizers (Debian: clang, and libclang-rt-dev for libFuzzer itself).
missing_fuzz() {
    printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; return (int)(n & 0); }\n' > "$tmp.c"
    ${FUZZ_CC:-clang} -fsanitize=fuzzer,address,undefined "$tmp.c" -o "$tmp" >/dev/null 2>&1 ||
        echo clang libclang-rt-dev
}

# Optional parts: OpenMPI (compiler wrapper + launcher) and slurm with munge.
missing_mpi() {
    printf '#include <mpi.h>\nint main(void){ return MPI_Init(0, 0); }\n' > "$tmp.c"
    { command -v mpicc >/dev/null 2>&1 && mpicc "$tmp.c" -o "$tmp" >/dev/null 2>&1; } || echo libopenmpi-dev
    command -v mpirun >/dev/null 2>&1 || echo openmpi-bin
}
missing_slurm() {
    out=""
    for c in slurmctld slurmd srun; do command -v $c >/dev/null 2>&1 || out="slurm-wlm"; done
    command -v munged >/dev/null 2>&1 || out="$out munge"
    echo $out
}
# The experiments part: gnuplot draws experiments/*/ plots (PNG, pngcairo
# or png terminal); without it `make` there stops at the plot.
missing_experiments() {
    command -v gnuplot >/dev/null 2>&1 || echo gnuplot-nox
}

# missing_part PART: the missing packages of main or an optional part
missing_part() {
    case $1 in fuzz) missing_fuzz ;; mpi) echo $(missing_mpi) ;; slurm) missing_slurm ;;
    experiments) missing_experiments ;; *) missing ;; esac
}

case "${1:-check}" in
check) missing_part "${2:-main}" ;;
install)
    shift
    part=main
    case "${1:-}" in fuzz|mpi|slurm|experiments) part=$1; shift ;; esac
    pkgs="$*"
    [ -n "$pkgs" ] || pkgs=$(missing_part $part)
    [ -n "$pkgs" ] || { echo "deps: all present"; exit 0; }
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "deps: need root or sudo to install: $pkgs" >&2; exit 3; fi
    echo "deps: installing Debian packages: $pkgs" >&2
    $SUDO apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >&2 || {
        echo "deps: apt-get install failed for: $pkgs" >&2; exit 3; }
    left=$(missing_part $part)
    [ -z "$left" ] || { echo "deps: still missing after install: $left" >&2; exit 3; }
    echo "deps: installed $pkgs" >&2 ;;
*) echo "usage: scripts/deps.sh check [fuzz|mpi|slurm|experiments] | install [fuzz|mpi|slurm|experiments] [PKG...]" >&2; exit 2 ;;
esac
