#!/bin/sh
# tests/cli/mask.sh — dllm-mask: record layout, masking statistics (awk over
# dllm-cat's JSON), SFT prompt / padding rules, --exact, --block,
# --random-length, --shard determinism, --copies, bad inputs.
# Inputs are made with `dllm-cat --from-json`; small (a few 10k tokens).
. "$(dirname "$0")/lib.sh"

# awk_ok NAME FILE PROGRAM: ok when the awk program (over FILE) prints "ok"; else prints its output
awk_ok() {
    name=$1; file=$2; shift 2
    got=$(awk "$AWKLIB $*" "$file" 2>&1)
    if [ "$got" = ok ]; then ok "$name"; else notok "$name" "$got"; fi
}
# awk helpers over dllm-cat JSON lines: arr(KEY) -> split the integer array
# KEY of the current line into A[1..n], returns n; num(KEY) -> a number value
AWKLIB='
function arr(key,   s, n) {
    if (!match($0, "\"" key "\":\\[[^]]*\\]")) return -1
    s = substr($0, RSTART + length(key) + 4, RLENGTH - length(key) - 5)
    if (s == "") return 0
    n = split(s, A, ",")
    return n
}
function arr2(key,   s, n) {
    if (!match($0, "\"" key "\":\\[[^]]*\\]")) return -1
    s = substr($0, RSTART + length(key) + 4, RLENGTH - length(key) - 5)
    if (s == "") return 0
    n = split(s, B, ",")
    return n
}
function num(key,   s) {
    if (!match($0, "\"" key "\":-?[0-9.eE+-]+")) return ""
    s = substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
    return s + 0
}
'

L=32
# rows: N rows of L ids in [3, 90), every 4th row with n_prompt and n_pad and a user key
mkrows() {  # mkrows N SEQLEN EXTRA_HEADER_JSON
    awk -v n="$1" -v L="$2" -v hx="$3" 'BEGIN {
        printf "{\"dllm\":1,\"kind\":\"rows\",\"tokenizer\":{\"vocab_size\":100,\"eos_id\":2,\"mask_id\":99%s},\"seq_len\":%d}\n", hx, L
        for (r = 0; r < n; r++) {
            s = "{\"ids\":["
            for (i = 0; i < L; i++) s = s (i ? "," : "") (3 + (r * 31 + i * 7) % 87)
            s = s "]"
            if (r % 4 == 1) s = s ",\"n_prompt\":5,\"n_pad\":6,\"src\":\"u" r "\""
            print s "}"
        }
    }'
}
mkrows 3000 $L "" > "$T/rows.jsonl"
dllm-cat --from-json "$T/rows.jsonl" -o "$T/rows.msgpack"
check "make a rows stream with dllm-cat --from-json" "test -s '$T/rows.msgpack'"

# ---------------------------------------------------------------- layout
dllm-mask -q --seed 11 "$T/rows.msgpack" -o "$T/m.msgpack"
dllm-cat "$T/m.msgpack" > "$T/m.jsonl"
is "header kind masked" "$(head -n 1 "$T/m.jsonl" | grep -c '"kind":"masked"')" 1
is "header records the seed" "$(head -n 1 "$T/m.jsonl" | grep -c '"seed":11')" 1
is "header keeps seq_len and mask_id" "$(head -n 1 "$T/m.jsonl" | grep -c '"mask_id":99.*"seq_len":32')" 1
is "one record per row" "$(dllm-cat -c "$T/m.msgpack")" 3000
tail -n +2 "$T/m.jsonl" > "$T/m.rec"
awk_ok "records hold x0 (= ids), xt, t" "$T/m.rec" '
    { n = arr("x0"); m = arr2("xt"); if (n != 32 || m != 32 || num("t") == "") bad++
      for (i = 1; i <= n; i++) if (B[i] != A[i] && B[i] != 99) bad++ }
    END { print bad ? "bad " bad : "ok" }'
is "n_prompt, n_pad and user keys carried" \
   "$(sed -n 2p "$T/m.rec" | grep -c '"n_prompt":5.*"n_pad":6.*"src":"u1"')" 1
dllm-cat -n "$T/rows.msgpack" | awk 'NR == 3' > "$T/row2"
awk_ok "x0 is the row's ids" "$T/m.rec" "NR == 3 { print (substr(\$0, index(\$0, \"[\"), index(\$0, \"]\") - index(\$0, \"[\") + 1) == \"$(sed 's/^{"ids":\(\[[^]]*\]\).*/\1/' "$T/row2")\") ? \"ok\" : \"differs\" }"

# ---------------------------------------------------------------- statistics
dllm-mask -q --seed 3 --random-length 0 "$T/rows.msgpack" | dllm-cat -n > "$T/s.rec"
awk_ok "t in [eps, 1]" "$T/s.rec" '{ t = num("t"); if (t < 0.001 || t > 1) bad++ } END { print bad ? "bad " bad : "ok" }'
awk_ok "mean masked fraction = mean t within 3 standard errors" "$T/s.rec" '
    { n = arr("x0"); m = arr2("xt"); lo = num("n_prompt"); if (lo == "") lo = 0
      e = n - lo; k = 0; for (i = 1; i <= n; i++) k += (B[i] == 99)
      d = k / e - num("t"); s += d; s2 += d * d; c++ }
    END { mu = s / c; se = sqrt((s2 / c - mu * mu) / (c - 1))
          print (mu < 3 * se && mu > -3 * se) ? "ok" : "mean diff " mu " se " se }'
awk_ok "mean t ~ (1+eps)/2" "$T/s.rec" '
    { t = num("t"); s += t; s2 += t * t; c++ }
    END { mu = s / c; se = sqrt((s2 / c - mu * mu) / (c - 1)); d = mu - 0.5005
          print (d < 3 * se && d > -3 * se) ? "ok" : "mean t " mu }'
awk_ok "SFT: no masked position before n_prompt" "$T/s.rec" '
    { m = arr2("xt"); lo = num("n_prompt"); for (i = 1; i <= lo; i++) if (B[i] == 99) bad++ }
    END { print bad ? "bad " bad : "ok" }'
dllm-mask -q --eps-range 0.3,0.4 "$T/rows.msgpack" | dllm-cat -n > "$T/r.rec"
awk_ok "--eps-range 0.3,0.4 clamps t" "$T/r.rec" '
    { t = num("t"); if (t < 0.29999 || t > 0.40001) bad++ } END { print bad ? "bad " bad : "ok" }'

dllm-mask -q --exact --random-length 0 "$T/rows.msgpack" | dllm-cat -n > "$T/e.rec"
awk_ok "--exact masks exactly round(t * eligible)" "$T/e.rec" '
    { n = arr("x0"); m = arr2("xt"); lo = num("n_prompt"); if (lo == "") lo = 0
      k = 0; for (i = 1; i <= n; i++) k += (B[i] == 99)
      want = int(num("t") * (n - lo) + 0.5); if (k != want) bad++ }
    END { print bad ? "bad " bad : "ok" }'

dllm-mask -q --no-pad-loss --eps-range 0.95,1 "$T/rows.msgpack" | dllm-cat -n > "$T/p.rec"
awk_ok "--no-pad-loss never masks the n_pad trailing positions" "$T/p.rec" '
    /"n_pad"/ { n = arr2("xt"); p = num("n_pad"); for (i = n - p + 1; i <= n; i++) if (B[i] == 99) bad++; c++ }
    END { print (bad || !c) ? "bad " bad : "ok" }'
dllm-mask -q --eps-range 0.95,1 --random-length 0 "$T/rows.msgpack" | dllm-cat -n > "$T/p2.rec"
awk_ok "without it, pads are masked" "$T/p2.rec" '
    /"n_pad"/ { n = arr2("xt"); p = num("n_pad"); for (i = n - p + 1; i <= n; i++) if (B[i] == 99) k++ }
    END { print k ? "ok" : "no pad masked" }'

dllm-mask -q --block 10 "$T/rows.msgpack" -o "$T/b.msgpack"
is "--block: header records block" "$(dllm-cat -H "$T/b.msgpack" | grep -c '"block":10')" 1
dllm-cat -n "$T/b.msgpack" > "$T/b.rec"
awk_ok "--block 10, L=32: 4 block t's in range, t = their mean" "$T/b.rec" '
    { if (!match($0, /"t_blocks":\[[^]]*\]/)) { bad++; next }
      n = split(substr($0, RSTART + 12, RLENGTH - 13), tb, ",")
      if (n != 4) bad++
      s = 0; for (i = 1; i <= n; i++) { s += tb[i]; if (tb[i] < 0.001 || tb[i] > 1) bad++ }
      d = s / n - num("t"); if (d > 1e-5 || d < -1e-5) bad++ }
    END { print bad ? "bad " bad : "ok" }'

dllm-mask -q --random-length 0.2 "$T/rows.msgpack" | dllm-cat -n > "$T/l.rec"
awk_ok "--random-length 0.2: fraction of rows with len within 3 se" "$T/l.rec" '
    { c++; if (index($0, "\"len\":")) k++ }
    END { f = k / c; se = sqrt(0.2 * 0.8 / c); d = f - 0.2
          print (d < 3 * se && d > -3 * se) ? "ok" : "fraction " f }'
awk_ok "positions >= len are never masked" "$T/l.rec" '
    /"len":/ { n = arr2("xt"); len = num("len"); if (len < 1 || len > n) bad++
               for (i = len + 1; i <= n; i++) if (B[i] == 99) bad++ }
    END { print bad ? "bad " bad : "ok" }'

# ---------------------------------------------------------------- determinism
dllm-mask -q --seed 9 "$T/rows.msgpack" | dllm-cat -n > "$T/one.rec"
for i in 0 1 2; do dllm-mask -q --seed 9 --shard $i/3 "$T/rows.msgpack" -o "$T/sh$i.msgpack"; done
dllm-cat -n "$T/sh0.msgpack" "$T/sh1.msgpack" "$T/sh2.msgpack" > "$T/three.rec"
same "$T/one.rec" "$T/three.rec" "--shard 0/3 1/3 2/3 concatenated = one run"
is "--shard slices are contiguous thirds" "$(dllm-cat -c "$T/sh1.msgpack")" 1000
is "SLURM_ARRAY_TASK_ID/COUNT slice file inputs" \
   "$(SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 dllm-mask -q "$T/rows.msgpack" | dllm-cat -c)" 1000
is "... and are ignored on stdin (the upstream stage slices)" \
   "$(SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 dllm-mask -q < "$T/rows.msgpack" | dllm-cat -c)" 3000
dllm-mask -q --seed 9 --antithetic-group 7 --t-sampling antithetic "$T/rows.msgpack" | dllm-cat -n > "$T/a1.rec"
for i in 0 1 2; do dllm-mask -q --seed 9 --antithetic-group 7 --t-sampling antithetic --shard $i/3 "$T/rows.msgpack"; done | dllm-cat -n > "$T/a3.rec"
same "$T/a1.rec" "$T/a3.rec" "antithetic groups cross shard boundaries unchanged"
dllm-mask -q --seed 9 "$T/rows.msgpack" | dllm-cat -n > "$T/again.rec"
same "$T/one.rec" "$T/again.rec" "same seed, same output"
dllm-mask -q --seed 10 "$T/rows.msgpack" | dllm-cat -n > "$T/other.rec"
check "another seed, another output" "! cmp -s '$T/one.rec' '$T/other.rec'"
dllm-mask -q --seed 9 "$T/rows.msgpack" -o "$T/z.msgpack.zst"
check "-o .zst output is zstd" "head -c 4 '$T/z.msgpack.zst' | od -An -tx1 | grep -q '28 b5 2f fd'"
dllm-cat -n "$T/z.msgpack.zst" > "$T/z.rec"
same "$T/one.rec" "$T/z.rec" "zstd output holds the same records"
dllm-mask -q --seed 9 < "$T/rows.msgpack" | dllm-cat -n > "$T/stdin.rec"
same "$T/one.rec" "$T/stdin.rec" "stdin = file"

# ---------------------------------------------------------------- copies
dllm-mask -q --seed 9 --copies 3 "$T/rows.msgpack" | dllm-cat -n > "$T/c3.rec"
is "--copies 3: 3x the records" "$(wc -l < "$T/c3.rec" | tr -d ' ')" 9000
head -n 3000 "$T/c3.rec" > "$T/c3a"
same "$T/one.rec" "$T/c3a" "copy 0 comes first and equals a single run"
awk_ok "copies differ from each other, x0 equal" "$T/c3.rec" '
    { x = substr($0, 1, index($0, "]")); if (NR <= 3000) { X[NR] = x; Y[NR] = $0 } else { r = (NR - 1) % 3000 + 1
      if (X[r] != x) bad++; if (Y[r] == $0) same++ } }
    END { print (bad || same > 30) ? "bad " bad " same " same : "ok" }'
dllm-mask -q --seed 9 --copies 3 < "$T/rows.msgpack" | dllm-cat -n > "$T/c3s.rec"
same "$T/c3.rec" "$T/c3s.rec" "--copies with stdin (spooled) = with a file"
dllm-mask -q --seed 9 --copies 2 "$T/rows.msgpack" "$T/rows.msgpack" | dllm-cat -c > "$T/c2n"
is "--copies over two input files" "$(cat "$T/c2n")" 12000

# ---------------------------------------------------------------- bad input
printf '%s\n' '{"dllm":1,"kind":"rows","tokenizer":{"vocab_size":100,"mask_id":99},"seq_len":4}' \
    '{"ids":[1,2,3,4]}' '{"ids":[1,2,3,4]}' '{"ids":[1,2,3]}' | dllm-cat --from-json -o "$T/short.msgpack"
expect_exit 1 "row shorter than seq_len: data error" "dllm-mask '$T/short.msgpack' -o '$T/out.msgpack'"
expect_err "short.msgpack: record 2: .*3 ids.*seq_len.* 4" "... naming the file and record"
no_file "$T/out.msgpack" "no output under the final name"
printf '%s\n' '{"dllm":1,"kind":"rows","tokenizer":{"vocab_size":100,"mask_id":99},"seq_len":2}' \
    '{"ids":[1,2]}' '{"ids":[1,100]}' | dllm-cat --from-json -o "$T/vocab.msgpack"
expect_exit 1 "id >= vocab_size: data error" "dllm-mask '$T/vocab.msgpack' -o '$T/out.msgpack'"
expect_err "record 1.*100" "... naming the record and id"
no_file "$T/out.msgpack" "no output under the final name"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":100,"mask_id":99}}' '{"ids":[1,2]}' \
    | dllm-cat --from-json -o "$T/tokens.msgpack"
expect_exit 1 "tokens stream: wrong kind" "dllm-mask '$T/tokens.msgpack'"
expect_err "kind" "... says so"
printf '%s\n' '{"dllm":1,"kind":"rows","tokenizer":{"vocab_size":100},"seq_len":2}' '{"ids":[1,2]}' \
    | dllm-cat --from-json -o "$T/nomask.msgpack"
expect_exit 1 "no mask id anywhere: data error" "dllm-mask '$T/nomask.msgpack'"
expect_err "mask" "... says so"
check "--mask-id supplies it (and the header records it)" \
    "dllm-mask -q --mask-id 7 '$T/nomask.msgpack' | dllm-cat -H | grep -q '\"mask_id\":7'"
expect_exit 2 "--shard with stdin: usage error" "dllm-mask --shard 0/2 < '$T/rows.msgpack'"
expect_exit 2 "bad --t-sampling: usage error" "dllm-mask --t-sampling nope '$T/rows.msgpack'"
expect_exit 2 "bad --eps-range: usage error" "dllm-mask --eps-range 0.5,0.2 '$T/rows.msgpack'"
expect_exit 1 "--copies 2 on bad stdin: error names <stdin>" "dllm-mask --copies 2 < '$T/short.msgpack'"
expect_err "<stdin>: record 2" "... not the spool file"
