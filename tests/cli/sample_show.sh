#!/bin/sh
# tests/cli/sample_show.sh — dllm-sample --show (sample/show.c) in a real
# terminal: a detached tmux pane runs the sampler with stderr on the pane and
# stdout in a file; the pane must end up showing the final canvas (the text
# dllm-tok -d makes of the output, whitespace aside) and the status line;
# stdout must stay the very samples stream a run without --show writes; with
# stderr not a terminal --show draws nothing.  Model: stories260K converted
# (dllm-train --steps 0), sampled at temperature 0.
# Skips when tmux or bin/dllm-sample is missing.
. "$(dirname "$0")/lib.sh"

if ! command -v tmux >/dev/null 2>&1; then skip "sample --show" "tmux is not installed"; exit 0; fi
if [ ! -x "$BIN/dllm-sample" ]; then skip "sample --show" "bin/dllm-sample is not built"; exit 0; fi

CK=$T/ck
check "convert stories260K" "dllm-train -q --init '$DATA/stories260K/stories260K.bin' -o '$CK' --steps 0"
ARGS="-m $CK -p 'Once upon a time' --gen-length 64 --steps 32 --block-length 32"
ESC=$(printf '\033')

# the same run without --show, stderr to a file: the reference stream
check "sample without --show" "dllm-sample $ARGS > '$T/plain.msgpack'"
# --show with stderr not a terminal: nothing drawn on it (show would use
# /dev/tty: setsid leaves the run without one, so a developer's terminal
# running `make test` is not drawn on either)
SETSID=""
command -v setsid >/dev/null 2>&1 && SETSID="setsid -w"
check "sample --show, stderr a file" "$SETSID dllm-sample $ARGS --show > '$T/file.msgpack' 2> '$T/file.err' < /dev/null"
if grep -q "$ESC" "$T/file.err"; then notok "--show off a terminal draws nothing" "escapes in stderr"; else ok "--show off a terminal draws nothing"; fi

# --show in a tmux pane (100x40); the command writes a flag when done
SOCK=dllm-test-$$
cat > "$T/run.sh" <<EOF
cd '$T' && PATH='$BIN':\$PATH dllm-sample $ARGS --show > '$T/show.msgpack'; echo \$? > '$T/rc'
EOF
if ! tmux -L "$SOCK" -f /dev/null new-session -d -x 100 -y 40 "sh '$T/run.sh'; sleep 30" 2> "$ERR"; then
    skip "sample --show" "tmux cannot start a session here: $(head -n 1 "$ERR")"; exit 0
fi
i=0
while [ ! -s "$T/rc" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.3
tmux -L "$SOCK" capture-pane -p -t 0 > "$T/pane.txt" 2> /dev/null
tmux -L "$SOCK" kill-server 2> /dev/null
if [ "$(cat "$T/rc" 2> /dev/null)" = 0 ]; then ok "sample --show in tmux exits 0"; else notok "sample --show in tmux exits 0" "rc '$(cat "$T/rc" 2> /dev/null)'"; fi

dllm-cat --no-header "$T/plain.msgpack" > "$T/plain.jsonl" 2> /dev/null
dllm-cat --no-header "$T/show.msgpack" > "$T/show.jsonl" 2> "$ERR"
dllm-cat --no-header "$T/file.msgpack" > "$T/file.jsonl" 2> /dev/null
if [ -s "$T/show.jsonl" ] && cmp -s "$T/plain.jsonl" "$T/show.jsonl"; then
    ok "stdout under --show is the same samples stream"
else
    notok "stdout under --show is the same samples stream" "records differ from the run without --show"
fi
same "$T/plain.jsonl" "$T/file.jsonl" "stdout with --show off a terminal is the same stream"

# the pane shows the final text (decoded output, whitespace removed on both
# sides: the canvas is wrapped at the pane width and capture-pane trims lines)
dllm-tok -q -d -t "$CK" "$T/show.msgpack" > "$T/text.txt" 2> /dev/null
want=$(tr -d ' \n\t\r' < "$T/text.txt")
got=$(tr -d ' \n\t\r' < "$T/pane.txt")
case "$got" in
    *"$want"*) [ -n "$want" ] && ok "pane shows the final canvas" || notok "pane shows the final canvas" "empty output" ;;
    *) notok "pane shows the final canvas" "pane lacks the decoded output"
       sed 's/^/    # pane: /' "$T/pane.txt" | head -n 12; sed 's/^/    # text: /' "$T/text.txt" | head -n 5 ;;
esac
if grep -qE 'step [0-9]+ +nfe [0-9]+ +0 masked' "$T/pane.txt"; then ok "pane shows the status line, no mask left"
else notok "pane shows the status line, no mask left"; sed 's/^/    # pane: /' "$T/pane.txt" | tail -n 3; fi
if grep -q "$ESC" "$T/pane.txt"; then notok "no escape garbage on the pane" "raw ESC in the captured text"; else ok "no escape garbage on the pane"; fi
if grep -q "Once upon a time" "$T/pane.txt"; then ok "pane shows the prompt"; else notok "pane shows the prompt"; fi
