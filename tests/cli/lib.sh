# tests/cli/lib.sh — sourced by every CLI test script.
#   ok NAME / notok NAME WHY / skip NAME WHY      print one result line
#   check NAME CMD...          ok when CMD (run by sh -c) exits 0
#   expect_exit CODE NAME CMD  ok when CMD exits CODE; its stderr is in $ERR
#   expect_err PATTERN NAME    ok when the last $ERR matches grep -E PATTERN
#   no_file PATH NAME          ok when PATH does not exist (no half output)
#   same FILE1 FILE2 NAME      ok when the files are byte-identical
#   is NAME GOT WANT           ok when the strings GOT and WANT are equal
# Variables: ROOT (repo), BIN (bin/, or $DLLM_BIN: make test-asan's bin-asan/), T (a fresh temp dir, removed at exit),
# DATA (share/data), SHARED (../shared/data or empty when absent).
set -u
ROOT=${DLLM_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}   # DLLM_ROOT: for scripts outside tests/cli
BIN=${DLLM_BIN:-$ROOT/bin}
DATA=$ROOT/share/data
SHARED=""
[ -d "$ROOT/../shared/data" ] && SHARED=$(cd "$ROOT/../shared/data" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dllm-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
ERR=$T/.stderr
PATH=$BIN:$PATH
export PATH LC_ALL=C

ok()    { echo "ok - $1"; }
notok() { echo "not ok - $1${2:+: $2}"; }
skip()  { echo "skip - $1: $2"; }
check() {
    name=$1; shift
    if sh -c "$*" > "$T/.out" 2> "$ERR"; then ok "$name"; else notok "$name" "exit $? from: $*"; sed 's/^/    # /' "$ERR" | head -n 10; fi
}
expect_exit() {
    code=$1; name=$2; shift 2
    sh -c "$*" > "$T/.out" 2> "$ERR"; rc=$?
    if [ "$rc" -eq "$code" ]; then ok "$name"; else notok "$name" "exit $rc, wanted $code: $*"; sed 's/^/    # /' "$ERR" | head -n 10; fi
}
expect_err() {
    if grep -qE "$1" "$ERR"; then ok "$2"; else notok "$2" "stderr lacks /$1/"; sed 's/^/    # /' "$ERR" | head -n 10; fi
}
no_file() { if [ -e "$1" ]; then notok "$2" "$1 exists"; else ok "$2"; fi; }
is() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "got '$2', wanted '$3'"; fi; }
same() { if cmp -s "$1" "$2"; then ok "$3"; else notok "$3" "$1 and $2 differ"; fi; }
need_shared() {  # need_shared NAME -> returns 1 (and prints skip) when ../shared is absent
    [ -n "$SHARED" ] && return 0
    skip "$1" "../shared/data is absent (large corpora live there)"; return 1
}
# tiny_train_data RECORDS: $T/tok.jsonl -> tok.msgpack -> rows.msgpack (L 32)
# -> train.msgpack (2 masked copies): RECORDS token records of ids 3..42
# (vocab 64, mask 63, eos 1), deterministic; shared by the training tests.
tiny_train_data() {
    awk -v n_rec="$1" 'BEGIN {
        print "{\"dllm\":1,\"kind\":\"tokens\",\"tokenizer\":{\"vocab_size\":64,\"mask_id\":63,\"eos_id\":1}}"
        for (k = 0; k < n_rec; k++) {
            s = "{\"ids\":["; n = 20 + (k * 13) % 50
            for (i = 0; i < n; i++) s = s (i ? "," : "") (3 + (k * 7) % 40)
            print s "]}"
        }
    }' > "$T/tok.jsonl"
    dllm-cat --from-json "$T/tok.jsonl" -o "$T/tok.msgpack"
    dllm-pack -q -L 32 --seed 1 "$T/tok.msgpack" -o "$T/rows.msgpack"
    dllm-mask -q --seed 1 --copies 2 "$T/rows.msgpack" -o "$T/train.msgpack"
}
# s260_train_data BYTES: stories260K converted into $T/s260, the first BYTES
# of the TinyStories sample tokenized with it and packed into rows of 64
# ($T/rows.msgpack), 2 masked copies ($T/train.msgpack); sets $A to the
# training arguments the bf16 / chunked-head tests share
s260_train_data() {
    dllm-train -q --init "$DATA/stories260K/stories260K.bin" -o "$T/s260" --steps 0 || notok "convert stories260K"
    head -c "$1" "$DATA/tinystories/tinystories_sample.txt" |
        dllm-tok -q -t "$T/s260/tokenizer.json" | dllm-pack -q -L 64 --shuffle --seed 1 -o "$T/rows.msgpack"
    dllm-mask -q --seed 1 --copies 2 "$T/rows.msgpack" -o "$T/train.msgpack"
    A="--init $T/s260 $T/train.msgpack --batch 4 --seed 3"
}
# tiny32_config OUT [SED-ARGS...]: share/configs/tiny.json shrunk to dim 32,
# MLP 64, 2 layers (plus the caller's own sed -e expressions) into OUT
tiny32_config() {
    out=$1; shift
    sed -e 's/"hidden_size": 128/"hidden_size": 32/' -e 's/"intermediate_size": 352/"intermediate_size": 64/' \
        -e 's/"num_hidden_layers": 4/"num_hidden_layers": 2/' "$@" "$ROOT/share/configs/tiny.json" > "$out"
}
