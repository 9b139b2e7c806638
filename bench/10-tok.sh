#!/bin/sh
# bench/10-tok.sh — dl_tok_encode MB/s vs HF tokenizers (Rust, 1 thread:
# bench/tok_bench.py), GPT-2 tokenizer, tinyshakespeare: as one document and
# line by line; best of 5, fresh tokenizer per run.  Target ratio >= 1, goal 2.
cd "$(dirname "$0")/.." || exit 3
TOK=share/data/gpt2-tokenizer
TXT=share/data/tinyshakespeare/input.txt; [ -f "$TXT" ] || TXT=../shared/data/tinyshakespeare/input.txt
if [ ! -f "$TXT" ]; then echo "tok: no tinyshakespeare (../shared absent): skipped"; exit 0; fi
for lib in -lmsgpackc -lmsgpack-c; do
    ${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -Ishare/io -Ishare/tok bench/tok_bench.c build/libdllm.a -o build/tok_bench \
        -lpcre2-8 -lutf8proc -ljansson -lzstd $lib -lm -lpthread -fopenmp 2>/dev/null && break
done
[ -x build/tok_bench ] || { echo "tok: cannot build bench/tok_bench.c"; exit 1; }
for mode in file lines; do
    ours=$(build/tok_bench "$TOK" "$TXT" 5 $mode | cut -d' ' -f1) || exit 1
    what="tok encode, GPT-2, tinyshakespeare ($( [ $mode = file ] && echo 'one 1.1 MB document' || echo 'line by line'))"
    if [ -x "$DLLM_VENV/bin/python" ]; then
        ref=$("$DLLM_VENV/bin/python" bench/tok_bench.py "$TOK" "$TXT" 5 $mode | cut -d' ' -f1) || exit 1
        echo "$what: ours ${ours} MB/s; HF tokenizers 1 thread ${ref} MB/s; ratio $(awk -v a="$ours" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')"
    else
        echo "$what: ours ${ours} MB/s; HF reference skipped (no venv)"
    fi
done
