#!/bin/sh
# tests/cli/score_task.sh — dllm-score --task (score/task.c): multiple choice
# (mc: query/choices/gold; schema: context_options/continuation/gold) and
# LAMBADA (context/continuation) on the converted stories260K.
#
# Hand computation (causal, exact): tests/data/score_tasks/*.pairs.jsonl hold,
# written by hand, every (context, continuation) text pair task.c must score
# (the split rule of score/task_internal.h: the space between query and
# choice goes with the continuation, and this SentencePiece-style tokenizer,
# which prepends its own word-start marker, has it dropped), with item,
# choice, gold and the choice's length in characters.  `dllm-tok --bos`
# turns them into prompt+response `tokens` records, `dllm-score --causal`
# scores them in stream mode, and awk computes from those nlls the argmax,
# the length-normalised argmax, acc and acc_norm; the task's records and
# summary must agree (ll equal to 1e-9).  LAMBADA's greedy match is checked
# against dllm-sample --causal's greedy continuation of the same context.
# Diffusion (--mc 4): determinism under --seed, --limit, and item i's option
# j equal to a one-record stream scored at record index 0 = item 0 (options
# share their item's draws).  Bad inputs: each a data error naming FILE:LINE.
# Smoke test on ../shared/data/eval-mc (piqa, arc_easy --limit 20) when present.
. "$(dirname "$0")/lib.sh"

if [ ! -x "$BIN/dllm-score" ]; then skip "score --task" "bin/dllm-score is not built"; exit 0; fi
D=$ROOT/tests/data/score_tasks
S=$T/s
check "convert stories260K (dllm-train --steps 0)" "dllm-train -q --init '$DATA/stories260K/stories260K.bin' -o '$S' --steps 0"

# jnum KEY FILE: a number from a summary JSON file (one key per line)
jnum() { sed -n "s/^ *\"$1\": \\([-0-9.eE+]*\\),*\$/\\1/p" "$2" | head -n 1; }
near() {  # near NAME GOT WANT: |got - want| <= 1e-9 (1 + |want|)
    if awk -v a="$2" -v b="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && d <= 1e-9 * (1 + m)) }'; then
        ok "$1"; else notok "$1" "got '$2', wanted '$3'"; fi
}
# pair_scores PAIRS.jsonl OUT [dllm-tok options]: dllm-score --causal of the pairs,
# as lines "item choice nll gold chars"
pair_scores() {
    p=$1; out=$2; shift 2
    dllm-tok -q -t "$S/tokenizer.json" --bos "$@" "$p" -o "$T/pairs.msgpack" &&
    dllm-score -q -m "$S" --causal "$T/pairs.msgpack" -o "$T/pairs.scores" &&
    dllm-cat --no-header "$T/pairs.scores" | awk '
        function num(k,   t) { t = $0; if (!sub(".*\"" k "\":", "", t)) return ""; sub(/[,}].*/, "", t); return t }
        function or0(v) { return v == "" ? 0 : v }
        { print num("item"), or0(num("choice")), num("nll"), or0(num("gold")), or0(num("chars")) }' > "$out"
}
# task_lls SCORES OUT: task records as lines "index choice ll" (one per option), and
# "index pick pick_norm correct" in OUT.pick
task_lls() {
    dllm-cat --no-header "$1" | awk -v pick="$2.pick" '
        function num(k,   t) { t = $0; if (!sub(".*\"" k "\":", "", t)) return ""; sub(/[,}].*/, "", t); return t }
        { i = num("index"); t = $0
          if (sub(/.*"ll":\[/, "", t)) { sub(/\].*/, "", t); n = split(t, a, ","); for (j = 1; j <= n; j++) print i, j - 1, a[j] }
          else print i, 0, num("ll")
          c = num("choice"); cn = num("choice_norm")
          print i, (c == "" ? "-" : c), (cn == "" ? "-" : cn), num("correct") > pick }' > "$2"
}
# hand ACC_FILE PAIRS_LINES: "acc acc_norm picks" from the pair nlls (ties: first option)
hand() {
    awk '{ i = $1; ll = -$3; if (!(i in b) || ll > bl[i]) { b[i] = $2; bl[i] = ll }
           if (!(i in bn) || ll / $5 > bnl[i]) { bn[i] = $2; bnl[i] = ll / $5 }
           g[i] = $4; if (i + 1 > n) n = i + 1 }
         END { for (i = 0; i < n; i++) { a += (b[i] == g[i]); an += (bn[i] == g[i]); s = s b[i] "/" bn[i] " " }
               printf "%.6f %.6f %s\n", a / n, an / n, s }' "$1"
}
# compare_lls NAME TASK_LINES PAIR_LINES: every task ll == -nll of its pair
compare_lls() {
    r=$(awk 'FNR == NR { ll[$1 " " $2] = $3; next }
             { k = $1 " " $2; if (!(k in ll)) { print "missing " k; exit } d = ll[k] + $3; if (d < 0) d = -d
               m = $3 < 0 ? -$3 : $3; if (d > 1e-9 * (1 + m)) { print k ": " ll[k] " vs " -$3; exit } c++ }
             END { print "same " c }' "$2" "$3")
    case $r in same*) ok "$1 ($r pairs)" ;; *) notok "$1" "$r" ;; esac
}
picks() { awk '{ s = s (NR > 1 ? " " : "") $2 "/" $3 } END { print s }' "$1"; }
# records FILE: the data records of a stream as JSON lines (the header's history names the command)
records() { dllm-cat --no-header "$1"; }

# ---------------------------------------------------------------- mc, causal, exact
check "mc --causal --bos: scores stream and --summary" \
    "dllm-score -q -m '$S' --causal --bos --task '$D/mc.jsonl' -o '$T/mc.scores' --summary '$T/mc.json'"
pair_scores "$D/mc.pairs.jsonl" "$T/mc.pairs"
task_lls "$T/mc.scores" "$T/mc.lls"
compare_lls "mc: every choice's ll == dllm-score --causal of prompt+response records" "$T/mc.lls" "$T/mc.pairs"
set -- $(hand "$T/mc.pairs")
near "mc: acc == hand argmax over the pairs' ll ($1)" "$(jnum acc "$T/mc.json")" "$1"
near "mc: acc_norm == hand argmax of ll / characters ($2)" "$(jnum acc_norm "$T/mc.json")" "$2"
shift 2
is "mc: per-item choice / choice_norm == hand argmaxes" "$(picks "$T/mc.lls.pick")" "$*"
is "mc: summary n 5, layout mc" "$(jnum n "$T/mc.json") $(sed -n 's/.*"layout": "\(.*\)".*/\1/p' "$T/mc.json")" "5 mc"
acc=$(jnum acc "$T/mc.json")
near "mc: acc_stderr == sqrt(acc(1-acc)/(n-1))" "$(jnum acc_stderr "$T/mc.json")" \
    "$(awk -v p="$acc" 'BEGIN { printf "%.10g", sqrt(p * (1 - p) / 4) }')"
is "mc: acc and acc_norm differ on this file (items 1, 2 favour the longer gold per character)" \
    "$(test "$(jnum acc "$T/mc.json")" != "$(jnum acc_norm "$T/mc.json")" && echo differ)" "differ"
dllm-score -m "$S" --causal --bos --task "$D/mc.jsonl" -o "$T/x.scores" 2> "$ERR" > /dev/null
expect_err "mc: 5 items \(mc, delimiter \" \", BOS, causal\): acc [0-9.]+ ± [0-9.]+, acc_norm [0-9.]+ ± [0-9.]+" "mc: summary line on stderr"
records "$T/mc.scores" > "$T/mc.rec"; records "$T/x.scores" > "$T/x.rec"
same "$T/mc.rec" "$T/x.rec" "mc: causal scoring is deterministic (identical records)"

# the same with llm-foundry's ARC/PIQA delimiter: context "query\nAnswer:", continuation "choice"
check "mc with the ARC/PIQA delimiter newline + 'Answer: '" \
    "dllm-score -q -m '$S' --causal --bos --task '$D/mc.jsonl' --delimiter '\\nAnswer: ' -o '$T/mca.scores' --summary '$T/mca.json'"
sed 's/", "response"/\\nAnswer:", "response"/' "$D/mc.pairs.jsonl" > "$T/mca.pairs.jsonl"
pair_scores "$T/mca.pairs.jsonl" "$T/mca.pairs"
task_lls "$T/mca.scores" "$T/mca.lls"
compare_lls "mc, Answer delimiter: ll == prompt 'query NL Answer:' + response 'choice'" "$T/mca.lls" "$T/mca.pairs"
set -- $(hand "$T/mca.pairs")
near "mc, Answer delimiter: acc == hand ($1)" "$(jnum acc "$T/mca.json")" "$1"
near "mc, Answer delimiter: acc_norm == hand ($2)" "$(jnum acc_norm "$T/mca.json")" "$2"

# whitespace around fields is stripped (llm-foundry's strip_dataset) unless --no-strip
printf '{"query": "  The little bird was very \\n", "choices": ["\\thappy. ", "purple.\\n"], "gold": 1}\n' > "$T/ws.jsonl"
printf '{"query": "The little bird was very", "choices": ["happy.", "purple."], "gold": 1}\n' > "$T/nows.jsonl"
dllm-score -q -m "$S" --causal --bos --task "$T/ws.jsonl" -o "$T/ws.scores" &&
dllm-score -q -m "$S" --causal --bos --task "$T/nows.jsonl" -o "$T/nows.scores" &&
dllm-score -q -m "$S" --causal --bos --no-strip --task "$T/ws.jsonl" -o "$T/ws2.scores"
task_lls "$T/ws.scores" "$T/ws.lls"; task_lls "$T/nows.scores" "$T/nows.lls"; task_lls "$T/ws2.scores" "$T/ws2.lls"
same "$T/ws.lls" "$T/nows.lls" "fields are stripped by default: same lls as the clean item"
is "--no-strip keeps the whitespace (other lls)" "$(cmp -s "$T/ws2.lls" "$T/nows.lls" || echo differ)" "differ"

# ---------------------------------------------------------------- schema (WinoGrande layout)
check "schema --causal --bos" \
    "dllm-score -q -m '$S' --causal --bos --task '$D/schema.jsonl' -o '$T/sch.scores' --summary '$T/sch.json'"
pair_scores "$D/schema.pairs.jsonl" "$T/sch.pairs"
task_lls "$T/sch.scores" "$T/sch.lls"
compare_lls "schema: ll of the shared continuation under each context == stream mode" "$T/sch.lls" "$T/sch.pairs"
set -- $(hand "$T/sch.pairs")
near "schema: acc == hand ($1)" "$(jnum acc "$T/sch.json")" "$1"
near "schema: acc_norm == acc (shared continuation)" "$(jnum acc_norm "$T/sch.json")" "$(jnum acc "$T/sch.json")"
is "schema: layout detected" "$(sed -n 's/.*"layout": "\(.*\)".*/\1/p' "$T/sch.json")" "schema"

# ---------------------------------------------------------------- LAMBADA
check "lambada --causal --bos" \
    "dllm-score -q -m '$S' --causal --bos --task '$D/lambada.jsonl' -o '$T/lam.scores' --summary '$T/lam.json'"
pair_scores "$D/lambada.pairs.jsonl" "$T/lam.pairs"
task_lls "$T/lam.scores" "$T/lam.lls"
compare_lls "lambada: ll == stream mode" "$T/lam.lls" "$T/lam.pairs"
# greedy: dllm-sample --causal continues each context greedily for as many tokens as the target
dllm-tok -q -t "$S/tokenizer.json" --bos "$D/lambada.pairs.jsonl" | dllm-cat --no-header > "$T/lam.ids"
want=""; sum_ll=0
i=0
while read -r line; do
    ids=$(echo "$line" | sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/'); np=$(echo "$line" | sed 's/.*"n_prompt":\([0-9]*\).*/\1/')
    n=$(echo "$ids" | awk -F, '{ print NF }')
    ctx=$(sed -n "$((i + 1))p" "$D/lambada.pairs.jsonl" | sed 's/.*"prompt": "\([^"]*\)".*/\1/')
    got=$(dllm-sample -q -m "$S" --causal --bos -p "$ctx" --gen-length $((n - np)) --keep-eos | dllm-cat --no-header |
          sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/')
    if [ "$got" = "$ids" ]; then want="$want true"; else want="$want false"; fi
    i=$((i + 1))
done < "$T/lam.ids"
is "lambada: correct == dllm-sample's greedy continuation equals the target" \
    "$(awk '{ print $4 }' "$T/lam.lls.pick" | tr '\n' ' ' | sed 's/ $//')" "$(echo $want)"
is "lambada: 3 of 4 greedy matches (the story's next words; 'football' is not)" "$(echo $want)" "true true true false"
near "lambada: acc" "$(jnum acc "$T/lam.json")" "$(echo $want | awk '{ for (i = 1; i <= NF; i++) a += ($i == "true"); printf "%.6f", a / NF }')"
m=$(awk '{ s -= $3; n++ } END { printf "%.12g", s / n }' "$T/lam.pairs")
near "lambada: ll_mean == mean of the pairs' ll" "$(jnum ll_mean "$T/lam.json")" "$m"
near "lambada: perplexity == exp(-ll_mean)" "$(jnum perplexity "$T/lam.json")" "$(awk -v m="$m" 'BEGIN { printf "%.12g", exp(-m) }')"

# ---------------------------------------------------------------- diffusion (Monte-Carlo)
check "mc, diffusion --mc 4 --seed 1" "dllm-score -q -m '$S' --mc 4 --seed 1 --bos --task '$D/mc.jsonl' -o '$T/d1.scores' --summary '$T/d1.json'"
check "again, same seed" "dllm-score -q -m '$S' --mc 4 --seed 1 --bos --task '$D/mc.jsonl' -o '$T/d2.scores'"
records "$T/d1.scores" > "$T/d1.rec"; records "$T/d2.scores" > "$T/d2.rec"
same "$T/d1.rec" "$T/d2.rec" "diffusion: deterministic under --seed (identical records)"
check "--seed 2" "dllm-score -q -m '$S' --mc 4 --seed 2 --bos --task '$D/mc.jsonl' -o '$T/d3.scores'"
task_lls "$T/d1.scores" "$T/d1.lls"; task_lls "$T/d3.scores" "$T/d3.lls"
is "diffusion: another seed, other estimates" "$(cmp -s "$T/d1.lls" "$T/d3.lls" || echo differ)" "differ"
check "--limit 2" "dllm-score -q -m '$S' --mc 4 --seed 1 --bos --task '$D/mc.jsonl' --limit 2 -o '$T/d4.scores' --summary '$T/d4.json'"
task_lls "$T/d4.scores" "$T/d4.lls"
is "--limit 2: n 2" "$(jnum n "$T/d4.json")" "2"
head -n "$(wc -l < "$T/d4.lls")" "$T/d1.lls" > "$T/d1h.lls"
same "$T/d4.lls" "$T/d1h.lls" "--limit 2: the first items' estimates are those of the full run"
# draws are keyed by the context's ids (sc_content_key), not the item's position:
# item 0's options equal one-record streams scored with --rng-key content; with
# --rng-key index (the keying before issue 10) they equal the streams' index-0 draws
check "--rng-key index" "dllm-score -q -m '$S' --mc 4 --seed 1 --bos --rng-key index --task '$D/mc.jsonl' -o '$T/d5.scores'"
task_lls "$T/d5.scores" "$T/d5.lls"
is "--rng-key index: other estimates than content keying" "$(cmp -s "$T/d1.lls" "$T/d5.lls" || echo differ)" "differ"
check "summary: rng_key content" "grep -q '\"rng_key\": \"content\"' '$T/d1.json'"
expect_exit 2 "--rng-key other than index or content is a usage error" "dllm-score -q -m '$S' --rng-key position --task '$D/mc.jsonl'"
for j in 0 1 2; do
    sed -n "$((j + 1))p" "$D/mc.pairs.jsonl" > "$T/one.jsonl"
    dllm-tok -q -t "$S/tokenizer.json" --bos "$T/one.jsonl" > "$T/one.tok"
    dllm-score -q -m "$S" --mc 4 --seed 1 --rng-key content "$T/one.tok" | dllm-cat --no-header |
        sed 's/.*"nll":\([-0-9.eE+]*\).*/\1/' > "$T/one.nll"
    near "diffusion: item 0 option $j == one-record stream keyed by content (same draws)" \
        "$(awk -v j=$j '$1 == 0 && $2 == j { printf "%.17g", -$3 }' "$T/d1.lls")" "$(cat "$T/one.nll")"
    dllm-score -q -m "$S" --mc 4 --seed 1 "$T/one.tok" | dllm-cat --no-header |
        sed 's/.*"nll":\([-0-9.eE+]*\).*/\1/' > "$T/one.nll"
    near "--rng-key index: item 0 option $j == one-record stream at index 0 (same draws)" \
        "$(awk -v j=$j '$1 == 0 && $2 == j { printf "%.17g", -$3 }' "$T/d5.lls")" "$(cat "$T/one.nll")"
done
check "schema and lambada in diffusion mode (--mc 2)" \
    "dllm-score -q -m '$S' --mc 2 --task '$D/schema.jsonl' -o '$T/ds.scores' && dllm-score -q -m '$S' --mc 2 --task '$D/lambada.jsonl' -o '$T/dl.scores'"
is "diffusion lambada: 4 records" "$(dllm-cat --no-header "$T/dl.scores" | wc -l | tr -d ' ')" "4"
check "no -o, stdout a pipe: the scores stream goes to stdout" \
    "dllm-score -q -m '$S' --causal --bos --task '$D/mc.jsonl' | dllm-cat --no-header | grep -c '\"task\":\"mc\"' | grep -qx 5"

# contexts longer than the model's positions lose their leftmost tokens (BOS kept)
awk 'BEGIN { q = ""; for (i = 0; i < 200; i++) q = q "Lily was happy. "
             printf "{\"query\": \"%s\", \"choices\": [\"Lily.\", \"sky car.\"], \"gold\": 0}\n", q }' > "$T/long.jsonl"
check "a context longer than max_seq_len is cut from the left" \
    "dllm-score -q -m '$S' --causal --bos --task '$T/long.jsonl' -o '$T/long.scores' --summary '$T/long.json'"
is "cut: summary counts 1 truncated item" "$(jnum truncated "$T/long.json")" "1"
is "cut: n_prompt + n_resp == max_seq_len 512 for each option" \
    "$(dllm-cat --no-header "$T/long.scores" | sed 's/.*"n_prompt":\[\([0-9]*\),\([0-9]*\)\],"n_resp":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2 \3 \4/' |
       awk '{ print $1 + $3, $2 + $4 }')" "512 512"
awk 'BEGIN { q = ""; for (i = 0; i < 200; i++) q = q "Lily was happy. "
             printf "{\"context\": \"Once\", \"continuation\": \"%s\"}\n", q }' > "$T/longc.jsonl"
expect_exit 1 "a continuation longer than max_seq_len: data error" "dllm-score -q -m '$S' --causal --task '$T/longc.jsonl'"
expect_err "longc\\.jsonl:1: option 0: continuation of [0-9]+ tokens, the model takes 512 positions" "long continuation: message names the line"

# ---------------------------------------------------------------- bad input
bad() {  # bad NAME PATTERN CONTENT...: a data error naming bad.jsonl:LINE
    name=$1; pat=$2; shift 2
    printf '%s\n' "$@" > "$T/bad.jsonl"
    expect_exit 1 "$name: exit 1" "dllm-score -q -m '$S' --causal --task '$T/bad.jsonl' -o '$T/bad.scores' --summary '$T/bad.json'"
    expect_err "bad\\.jsonl:$pat" "$name: message names the file and line"
    no_file "$T/bad.scores" "$name: no output left behind"
}
bad "malformed JSON" '2: malformed JSON' '{"query": "a", "choices": ["b"], "gold": 0}' '{"query": "a", "choices": ["b"'
bad "missing gold" '1: missing "gold"' '{"query": "a", "choices": ["b", "c"]}'
bad "gold out of range" '2: gold 2 out of range \(2 choices\)' '{"query": "a", "choices": ["b"], "gold": 0}' '{"query": "a", "choices": ["b", "c"], "gold": 2}'
bad "negative gold" '1: gold -1 out of range' '{"query": "a", "choices": ["b", "c"], "gold": -1}'
bad "gold not an integer" '1: "gold" is not an integer' '{"query": "a", "choices": ["b", "c"], "gold": "1"}'
bad "empty choices" '1: "choices" is empty' '{"query": "a", "choices": [], "gold": 0}'
bad "empty choice string" '1: choices\[1\] is empty' '{"query": "a", "choices": ["b", " "], "gold": 0}'
bad "missing query" '1: missing "query"' '{"choices": ["b", "c"], "gold": 0}'
bad "schema without continuation" '1: missing "continuation"' '{"context_options": ["a", "b"], "gold": 0}'
bad "lambada without context" '3: missing "context"' '{"context": "a", "continuation": "b"}' '' '{"continuation": "b"}'
bad "unknown layout" '1: unknown layout' '{"text": "a"}'
bad "mixed layouts" '2: a schema item, but line 1 is a mc item' '{"query": "a", "choices": ["b"], "gold": 0}' '{"context_options": ["a"], "continuation": "b", "gold": 0}'
bad "not an object" '1: not a JSON object' '[1, 2]'
printf '\n\n' > "$T/empty.jsonl"
expect_exit 1 "empty task file: exit 1" "dllm-score -q -m '$S' --causal --task '$T/empty.jsonl'"
expect_err "empty\\.jsonl: no items" "empty task file: message"
printf '{"query": "a", "choices": ["b"], "gold": 0}\n' > "$T/ok.jsonl"
expect_exit 1 "--task-format lambada on an mc file: exit 1" "dllm-score -q -m '$S' --causal --task-format lambada --task '$T/ok.jsonl'"
expect_err "ok\\.jsonl:1: missing \"context\"" "--task-format lambada: names the missing field"
expect_exit 2 "--task-format bogus: usage error" "dllm-score -q -m '$S' --causal --task-format bogus --task '$T/ok.jsonl'"
expect_exit 3 "missing task file: I/O error" "dllm-score -q -m '$S' --causal --task '$T/nope.jsonl'"

# ---------------------------------------------------------------- the real eval sets
if need_shared "eval-mc smoke test" && [ -f "$SHARED/eval-mc/piqa.jsonl" ]; then
    for t in piqa arc_easy; do
        check "$t --limit 20, Answer delimiter (causal)" \
            "dllm-score -q -m '$S' --causal --bos --task '$SHARED/eval-mc/$t.jsonl' --delimiter '\\nAnswer: ' --limit 20 -o '$T/$t.scores' --summary '$T/$t.json'"
        is "$t: 20 items scored" "$(jnum n "$T/$t.json") $(dllm-cat --no-header "$T/$t.scores" | wc -l | tr -d ' ')" "20 20"
    done
    check "piqa --limit 20, diffusion --mc 1" \
        "dllm-score -q -m '$S' --mc 1 --task '$SHARED/eval-mc/piqa.jsonl' --delimiter '\\nAnswer: ' --limit 20 --summary '$T/pd.json' -o '$T/pd.scores'"
    is "piqa diffusion: 20 items" "$(jnum n "$T/pd.json")" "20"
fi
