#!/bin/sh
# tests/cli/pack.sh — dllm-pack: pretrain rows (exact length, docs offsets,
# --keep-tail), sft rows (padding, n_prompt/n_pad, --truncate, counts),
# --shuffle (determinism, bounded window), --split (fraction, naming),
# --shards / --shard, bad inputs.  Inputs made with `dllm-cat --from-json`.
. "$(dirname "$0")/lib.sh"

awk_ok() {
    name=$1; file=$2; shift 2
    got=$(awk "$*" "$file" 2>&1)
    if [ "$got" = ok ]; then ok "$name"; else notok "$name" "$got"; fi
}
HDR='{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":100,"eos_id":2,"pad_id":0,"mask_id":99}}'

# ---------------------------------------------------------------- pretrain
printf '%s\n' "$HDR" \
    '{"ids":[10,11,12,13,14],"id":"a"}' \
    '{"ids":[20,21,22],"id":"b"}' \
    '{"ids":[30,31,32,33,34,35,36,37,38,39,40],"id":"c"}' \
    '{"ids":[],"id":"empty"}' \
    '{"ids":[50,51,2],"id":"ends-with-eos"}' | dllm-cat --from-json -o "$T/docs.msgpack"
dllm-pack -L 4 "$T/docs.msgpack" -o "$T/pre.msgpack" 2> "$ERR"
cat > "$T/pre.want" <<'EOF'
{"ids":[10,11,12,13],"docs":[0]}
{"ids":[14,2,20,21],"docs":[2]}
{"ids":[22,2,30,31],"docs":[2]}
{"ids":[32,33,34,35],"docs":[]}
{"ids":[36,37,38,39],"docs":[]}
{"ids":[40,2,50,51],"docs":[2]}
EOF
dllm-cat -n "$T/pre.msgpack" > "$T/pre.got"
same "$T/pre.got" "$T/pre.want" "pretrain: EOS after each document, rows of L, docs offsets, tail dropped, doc keys dropped"
expect_err "4 documents, 25 tokens with EOS, 6 rows of 4, tail dropped" "pretrain summary on stderr"
is "header: kind rows, seq_len" "$(dllm-cat -H "$T/pre.msgpack" | grep -c '"kind":"rows".*"seq_len":4')" 1
dllm-pack -q -L 4 --keep-tail "$T/docs.msgpack" | dllm-cat -n | tail -n 1 > "$T/tail.got"
is "--keep-tail pads the tail with pad_id and records n_pad" "$(cat "$T/tail.got")" '{"ids":[2,0,0,0],"docs":[],"n_pad":3}'
is "--pad-id overrides" "$(dllm-pack -q -L 4 --keep-tail --pad-id 7 "$T/docs.msgpack" | dllm-cat -n | tail -n 1)" \
   '{"ids":[2,7,7,7],"docs":[],"n_pad":3}'

# a bigger corpus: 500 documents of 1..120 ids
awk -v hdr="$HDR" 'BEGIN { print hdr; s = 1
    for (d = 0; d < 500; d++) { s = (s * 1103515245 + 12345) % 2147483648; n = 1 + s % 120
        l = "{\"ids\":["; for (i = 0; i < n; i++) l = l (i ? "," : "") (3 + (d + i) % 90); print l "],\"k\":" d "}"; tot += n + 1 }
    print tot > "/dev/stderr" }' > "$T/big.jsonl" 2> "$T/big.total"
dllm-cat --from-json "$T/big.jsonl" -o "$T/big.msgpack"
dllm-pack -q -L 64 "$T/big.msgpack" | dllm-cat -n > "$T/big.rows"
is "pretrain: floor(tokens with EOS / L) rows" "$(wc -l < "$T/big.rows" | tr -d ' ')" "$(( $(cat "$T/big.total") / 64 ))"
awk_ok "every row exactly L ids, docs offsets increasing and < L" "$T/big.rows" '
    { match($0, /"ids":\[[^]]*\]/); n = split(substr($0, RSTART + 7, RLENGTH - 8), a, ",")
      if (n != 64) bad++
      match($0, /"docs":\[[^]]*\]/); s = substr($0, RSTART + 8, RLENGTH - 9)
      m = s == "" ? 0 : split(s, d, ","); for (i = 1; i <= m; i++) { if (d[i] >= 64 || (i > 1 && d[i] <= d[i-1])) bad++
          if (d[i] > 0 && a[d[i]] != 2) bad++ } }
    END { print bad ? "bad " bad : "ok" }'

# ---------------------------------------------------------------- sft
printf '%s\n' "$HDR" \
    '{"ids":[10,11,12,13,14],"n_prompt":2,"id":"a"}' \
    '{"ids":[20,21,22,2],"n_prompt":1,"lang":"en"}' \
    '{"ids":[30,31,32,33,34,35,36,37,38,39,40],"n_prompt":3}' \
    '{"ids":[50,51,52,53,54,55,56,57,58],"n_prompt":8}' \
    '{"ids":[60,61,62,63,64,65,66,67]}' | dllm-cat --from-json -o "$T/sft.msgpack"
dllm-pack --mode sft -L 8 "$T/sft.msgpack" -o "$T/sft.out" 2> "$ERR"
cat > "$T/sft.want" <<'EOF'
{"ids":[10,11,12,13,14,2,2,2],"n_prompt":2,"n_pad":2,"id":"a"}
{"ids":[20,21,22,2,2,2,2,2],"n_prompt":1,"n_pad":4,"lang":"en"}
{"ids":[30,31,32,33,34,35,36,37],"n_prompt":3,"n_pad":0}
{"ids":[60,61,62,63,64,65,66,67],"n_prompt":0,"n_pad":0}
EOF
dllm-cat -n "$T/sft.out" > "$T/sft.got"
same "$T/sft.got" "$T/sft.want" "sft: EOS appended, EOS padding, n_prompt/n_pad, keys carried, --truncate right"
expect_err "5 examples, 4 rows, 1 dropped \(1 prompt >= L, 0 too long, 0 empty\), 2 truncated" "sft counts on stderr"
dllm-pack --mode sft -L 8 --truncate drop "$T/sft.msgpack" 2> "$ERR" | dllm-cat -n > "$T/sftd.got"
head -n 2 "$T/sft.want" > "$T/sftd.want"
same "$T/sftd.got" "$T/sftd.want" "--truncate drop drops over-long examples"
expect_err "5 examples, 2 rows, 3 dropped \(1 prompt >= L, 2 too long, 0 empty\), 0 truncated" "... and counts them"
dllm-pack -q --mode sft -L 8 "$T/sft.msgpack" | dllm-mask -q --no-pad-loss --eps-range 1,1 --random-length 0 \
    | dllm-cat -n | head -n 1 > "$T/sftm.got"
is "sft | mask --no-pad-loss: prompt and padding unmasked" "$(sed 's/.*"xt":\(\[[^]]*\]\).*/\1/' "$T/sftm.got")" \
   "[10,11,99,99,99,99,2,2]"

# sft corpus for order/split tests: 2000 examples, each row unique by its key k
awk -v hdr="$HDR" 'BEGIN { print hdr
    for (d = 0; d < 2000; d++) print "{\"ids\":[" 3 + d % 90 "," 3 + (d * 7) % 90 "],\"n_prompt\":1,\"k\":" d "}" }' \
    | dllm-cat --from-json -o "$T/ex.msgpack"
dllm-pack -q --mode sft -L 8 "$T/ex.msgpack" | dllm-cat -n > "$T/ex.rows"
sort "$T/ex.rows" > "$T/ex.sorted"

# ---------------------------------------------------------------- shuffle
dllm-pack -q --mode sft -L 8 --shuffle --seed 1 --shuffle-window 100 "$T/ex.msgpack" | dllm-cat -n > "$T/sh1"
dllm-pack -q --mode sft -L 8 --shuffle --seed 1 --shuffle-window 100 < "$T/ex.msgpack" | dllm-cat -n > "$T/sh1b"
dllm-pack -q --mode sft -L 8 --shuffle --seed 2 --shuffle-window 100 "$T/ex.msgpack" | dllm-cat -n > "$T/sh2"
same "$T/sh1" "$T/sh1b" "--shuffle: deterministic given the seed"
check "--shuffle: another seed, another order" "! cmp -s '$T/sh1' '$T/sh2'"
check "--shuffle: order changed" "! cmp -s '$T/sh1' '$T/ex.rows'"
sort "$T/sh1" > "$T/sh1.sorted"
same "$T/sh1.sorted" "$T/ex.sorted" "--shuffle: same rows"
awk_ok "--shuffle-window 100: no row comes out more than 100 places early" "$T/sh1" '
    { match($0, /"k":[0-9]+/); k = substr($0, RSTART + 4, RLENGTH - 4) + 0; if (NR - 1 < k - 100) bad++
      if (NR - 1 != k) moved++ }
    END { print (bad || moved < 1000) ? "bad " bad " moved " moved : "ok" }'
dllm-pack -q --mode sft -L 8 --shuffle --shuffle-window 1 "$T/ex.msgpack" | dllm-cat -n > "$T/w1"
same "$T/w1" "$T/ex.rows" "--shuffle-window 1 keeps the order"
is "--shuffle records the seed" "$(dllm-pack -q --shuffle --seed 5 -L 8 "$T/ex.msgpack" | dllm-cat -H | grep -c '"seed":5')" 1

# ---------------------------------------------------------------- split
dllm-pack -q --mode sft -L 8 --split valid=0.2 --seed 3 "$T/ex.msgpack" -o "$T/sp.msgpack.zst"
check "--split: held-out stream named out.valid.msgpack.zst" "test -f '$T/sp.valid.msgpack.zst'"
nv=$(dllm-cat -c "$T/sp.valid.msgpack.zst"); nt=$(dllm-cat -c "$T/sp.msgpack.zst")
is "--split: every row in exactly one stream (count)" "$((nv + nt))" 2000
check "--split valid=0.2: held-out fraction within 3 se (got $nv of 2000)" "[ $nv -gt 346 ] && [ $nv -lt 454 ]"
dllm-cat -n "$T/sp.msgpack.zst" "$T/sp.valid.msgpack.zst" | sort > "$T/sp.sorted"
same "$T/sp.sorted" "$T/ex.sorted" "--split: train + held-out = all rows"
for i in 0 1 2; do dllm-pack -q --mode sft -L 8 --split valid=0.2 --seed 3 --shard $i/3 "$T/ex.msgpack" -o "$T/sp$i.msgpack"; done
dllm-cat -n "$T/sp0.valid.msgpack" "$T/sp1.valid.msgpack" "$T/sp2.valid.msgpack" > "$T/sp3.valid"
dllm-cat -n "$T/sp.valid.msgpack.zst" > "$T/sp1.valid"
same "$T/sp1.valid" "$T/sp3.valid" "sft --split with --shard i/3: same held-out rows as one run"
dllm-pack -q -L 16 --split valid=0.1 --shards 3 "$T/big.msgpack" -o "$T/pre"
check "--split with --shards: PREFIX.valid.msgpack.zst beside the shards" \
    "test -f '$T/pre.valid.msgpack.zst' && test -f '$T/pre-00002-of-00003.msgpack.zst'"
expect_exit 2 "--split to stdout: usage error" "dllm-pack --split valid=0.1 '$T/ex.msgpack'"
expect_exit 2 "--split without NAME=: usage error" "dllm-pack --split 0.1 -o '$T/x' '$T/ex.msgpack'"

# ---------------------------------------------------------------- shards
dllm-pack -q --mode sft -L 8 --shards 3 "$T/ex.msgpack" -o "$T/shd"
is "--shards 3: three files, all rows" "$(dllm-cat -c "$T"/shd-0000?-of-00003.msgpack.zst)" 2000
is "--shards 3: round-robin" "$(dllm-cat -c "$T/shd-00001-of-00003.msgpack.zst")" 667
for i in 0 1 2; do dllm-pack -q --mode sft -L 8 --shard $i/3 "$T/ex.msgpack"; done | dllm-cat -n > "$T/shard3"
same "$T/shard3" "$T/ex.rows" "sft --shard 0/3 1/3 2/3 concatenated = one run"
is "--shard slices the input documents contiguously" \
   "$(dllm-pack -q --mode sft -L 8 --shard 1/3 "$T/ex.msgpack" | dllm-cat -n | head -n 1 | grep -c '"k":666}')" 1
for i in 0 1; do dllm-pack -q -L 64 --shard $i/2 "$T/big.msgpack"; done | dllm-cat -n > "$T/pre2"
awk_ok "pretrain --shard: rows of L from each slice" "$T/pre2" '
    { match($0, /"ids":\[[^]]*\]/); if (split(substr($0, RSTART + 7, RLENGTH - 8), a, ",") != 64) bad++ }
    END { print (bad || NR < 10) ? "bad " bad : "ok" }'
expect_exit 2 "--shard with stdin: usage error" "dllm-pack --shard 0/2 < '$T/ex.msgpack'"

# ---------------------------------------------------------------- bad input
expect_exit 1 "rows stream in: wrong kind" "dllm-pack '$T/pre.msgpack'"
expect_err "kind" "... says so"
printf '%s\n' '{"dllm":1,"kind":"tokens","tokenizer":{"vocab_size":100}}' '{"ids":[1,2]}' \
    | dllm-cat --from-json -o "$T/noeos.msgpack"
expect_exit 1 "no eos_id and no --eos-id: data error" "dllm-pack '$T/noeos.msgpack'"
check "--eos-id supplies it" "dllm-pack -q -L 2 --eos-id 2 '$T/noeos.msgpack' | dllm-cat -H | grep -q '\"eos_id\":2'"
printf '%s\n' "$HDR" '{"ids":[1,2]}' '{"ids":[1,100]}' | dllm-cat --from-json -o "$T/vocab.msgpack"
expect_exit 1 "id >= vocab_size: data error" "dllm-pack -L 2 '$T/vocab.msgpack' -o '$T/out.msgpack'"
expect_err "vocab.msgpack: record 1" "... naming the record"
no_file "$T/out.msgpack" "no output under the final name"
expect_exit 1 "error with --split: data error" "dllm-pack -L 2 --split valid=0.5 '$T/vocab.msgpack' -o '$T/out.msgpack'"
no_file "$T/out.valid.msgpack" "... no held-out output left either"
printf '%s\n' "$HDR" '{"ids":[1,2],"n_prompt":3}' | dllm-cat --from-json -o "$T/np.msgpack"
expect_exit 1 "sft: n_prompt > ids: data error" "dllm-pack --mode sft -L 4 '$T/np.msgpack'"
expect_exit 2 "bad --mode: usage error" "dllm-pack --mode nope '$T/ex.msgpack'"
expect_exit 2 "bad --truncate: usage error" "dllm-pack --truncate left '$T/ex.msgpack'"

# ------------------------------------------- sliced pretrain: index_base
# rows of slice I are numbered from 0 in each slice; the header's index_base
# (I << 40) keeps dllm-mask from giving slices the same random draws
for i in 0 1; do
    dllm-pack -q -L 4 --shard $i/2 "$T/docs.msgpack" | dllm-mask -q --seed 3 | dllm-cat -n | sed -n 1p > "$T/slice$i.first"
done
is "--shard 1/2 header carries index_base 2^40" \
   "$(dllm-pack -q -L 4 --shard 1/2 "$T/docs.msgpack" | dllm-cat -H | grep -c '"index_base":1099511627776')" 1
t0=$(sed 's/.*"t":\([^,}]*\).*/\1/' "$T/slice0.first"); t1=$(sed 's/.*"t":\([^,}]*\).*/\1/' "$T/slice1.first")
if [ -n "$t0" ] && [ "$t0" != "$t1" ]; then ok "sliced pack | mask: first rows of two slices get different t ($t0, $t1)"
else notok "sliced pack | mask: first rows of two slices get different t" "t0=$t0 t1=$t1"; fi
