#!/bin/sh
# tests/cli/layers.sh — scripts/check-layers.sh on this tree (every include
# follows the layer rules, no include or call cycle inside a folder), and on
# three small broken trees to show it can fail: io including the tokenizer,
# two tokenizer files calling each other, a program calling dl_dev_alloc.
. "$(dirname "$0")/lib.sh"
CHECK=$ROOT/scripts/check-layers.sh

sh "$CHECK" "$ROOT" > "$T/layers.out" 2>&1; rc=$?
cat "$T/layers.out"
is "check-layers.sh on the tree exits 0" "$rc" 0

mkdir -p "$T/bad/share/io" "$T/bad/share/tok"
printf '#include "dl_tok.h"\n' > "$T/bad/share/io/dl_x".c
printf '/* api */\n' > "$T/bad/share/tok/dl_tok.h"
sh "$CHECK" "$T/bad" > "$T/bad.out" 2>&1; rc=$?
is "io including share/tok fails the check" "$rc" 1
check "names the forbidden edge" "grep -q 'share/io/dl_x.c (io) includes share/tok/dl_tok.h (tok)' '$T/bad.out'"

mkdir -p "$T/cyc/share/tok" "$T/cyc/build/share/tok"
printf '#include "tok_b.h"\nint tok_a(void) { return tok_b(); }\n' > "$T/cyc/share/tok/tok_a".c
printf 'int tok_a(void);\nint tok_b(void) { return tok_a(); }\n' > "$T/cyc/share/tok/tok_b.c"
printf '#ifndef B\n#define B\n#include "tok_a.h"\nint tok_b(void);\n#endif\n' > "$T/cyc/share/tok/tok_b.h"
printf '#ifndef A\n#define A\n#include "tok_b.h"\nint tok_a(void);\n#endif\n' > "$T/cyc/share/tok/tok_a.h"
for f in a b; do cc -c "$T/cyc/share/tok/tok_$f.c" -I"$T/cyc/share/tok" -o "$T/cyc/build/share/tok/tok_$f.o" 2>/dev/null; done
sh "$CHECK" "$T/cyc" > "$T/cyc.out" 2>&1; rc=$?
is "an include cycle inside share/tok fails the check" "$rc" 1
check "reports the include cycle" "grep -q 'not ok - share/tok: includes between modules: cycle' '$T/cyc.out'"
check "reports the call cycle" "grep -q 'not ok - share/tok: calls between files: cycle' '$T/cyc.out'"

# a program calling the device layer directly (kernels.h reaches it through dl_model.h)
mkdir -p "$T/kc/train" "$T/kc/kernels" "$T/kc/build/train" "$T/kc/build/kernels"
printf 'void *dl_dev_alloc(void *d, unsigned long n);\nvoid *grab(void) { return dl_dev_alloc(0, 4); }\n' > "$T/kc/train/dp.c"
printf 'void *dl_dev_alloc(void *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$T/kc/kernels/dispatch.c"
cc -c "$T/kc/train/dp.c" -o "$T/kc/build/train/dp.o" && cc -c "$T/kc/kernels/dispatch.c" -o "$T/kc/build/kernels/dispatch.o"
sh "$CHECK" "$T/kc" > "$T/kc.out" 2>&1; rc=$?
is "a program calling dl_dev_* fails the check" "$rc" 1
check "names the call" "grep -q 'not ok - train/dp.o calls dl_dev_alloc (kernels/)' '$T/kc.out'"
