#!/bin/sh
# tests/cli/options.sh — options every program shares behave the same way:
#   --help to a closed or full stdout is an I/O error (exit 3, message on
#   stderr) in every program, dllm-tok train included; a bad --threads/-j
#   (negative, not a number, over DL_THREADS_MAX, overflowing) is a usage
#   error (exit 2) in every program that has the option.  Both live once in
#   share/io/dl_opts (dl_opts_help, DL_OPT_THREADS).
. "$(dirname "$0")/lib.sh"

for p in tok "tok train" pack mask cat train sample score; do
    expect_exit 0 "dllm-$p --help to a pipe" "dllm-$p --help | cat > /dev/null"
    expect_exit 3 "dllm-$p --help to a closed stdout" "dllm-$p --help >&-"
    expect_err 'error: .*(stdout|Bad file)' "dllm-$p --help closed: says why"
    if [ -w /dev/full ]; then
        expect_exit 3 "dllm-$p --help to a full stdout" "dllm-$p --help > /dev/full"
        expect_err 'No space' "dllm-$p --help full: says why"
    else
        skip "dllm-$p --help to a full stdout" "no /dev/full"
    fi
done

for p in tok train sample score; do
    for v in -1 x 1.5 "" 1025 100000 99999999999999999999; do
        expect_exit 2 "dllm-$p --threads '$v'" "dllm-$p --threads '$v'"
    done
    expect_err 'threads' "dllm-$p --threads: names the option"
done
for p in tok sample score; do
    expect_exit 2 "dllm-$p -j -3" "dllm-$p -j -3"
done
