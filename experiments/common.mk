# experiments/common.mk — what the three experiments share: where the
# programs are, the scaling variables, the data preparation rules and the
# scratch model config.  Included by experiments/*/Makefile.
#
# Every target is a real file under $(OUT)/, so `make` re-runs only what a
# changed input or variable file affects (variables that change numbers are
# recorded in $(OUT)/vars.*, rewritten only when they change, like the
# top-level build/config.stamp).  It does NOT build the programs (run `make`
# at the top first) and does not install gnuplot (scripts/deps.sh install
# experiments).
#
# Scaling (make VAR=value):
#   OUT        output folder [out]           THREADS  CPU threads per program [2]
#   DEVICE     cpu | cuda [cpu]              RUN      prefix command for train/sample/score, e.g. RUN='srun -G1'
#   TXT        raw text [share/data/tinystories/tinystories_val.txt]   DATA_BYTES  first N bytes of it (0: all) [0]
#   SEQ        row length [256]              BATCH    rows per step [8]       STEPS  optimizer steps
#   PACK_MODE  dllm-pack mode [empty: pretrain packing; reversal: --mode sft]
#   LR WARMUP  learning rate, warmup steps   EVAL_EVERY  held-out evaluation period
#   DIM LAYERS HEADS KV_HEADS FFN            the from-scratch model (default: stories260K's shape)
#   MC         Monte-Carlo samples of dllm-score [32]    SEED  every seed [1]
# Numbers do not depend on THREADS (the programs are bit-identical per thread
# count given a seed); they do depend on everything else.
ROOT     := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
BIN      ?= $(ROOT)/bin
OUT      ?= out
THREADS  ?= 2
DEVICE   ?= cpu
RUN      ?=
GNUPLOT  ?= gnuplot
TXT      ?= $(ROOT)/share/data/tinystories/tinystories_val.txt
DATA_BYTES ?= 0
SEQ      ?= 256
BATCH    ?= 8
COPIES   ?= 4
LR       ?= 2e-3
WARMUP   ?= 20
MC       ?= 32
SEED     ?= 1
DIM      ?= 64
LAYERS   ?= 5
HEADS    ?= 8
KV_HEADS ?= 4
FFN      ?= 172
S260     := $(ROOT)/share/data/stories260K

TRAIN  = $(RUN) $(BIN)/dllm-train -q --device $(DEVICE) --threads $(THREADS)
SCORE  = $(RUN) $(BIN)/dllm-score -q --device $(DEVICE) -j $(THREADS)
SAMPLE = $(RUN) $(BIN)/dllm-sample -q --device $(DEVICE) -j $(THREADS)
TOK    = $(BIN)/dllm-tok -q
PACK   = $(BIN)/dllm-pack -q
MASK   = $(BIN)/dllm-mask -q

# $(call stamp,NAME,TEXT): $(OUT)/vars.NAME holds TEXT, rewritten only when it
# changes (not for `make smoke` / `make clean` themselves: the smoke's own
# make, with its OUT, writes its stamps; out/ is left alone)
ifeq ($(filter smoke clean,$(MAKECMDGOALS)),)
stamp = $(shell mkdir -p $(OUT) && { [ "$$(cat $(OUT)/vars.$(1) 2>/dev/null)" = "$(2)" ] || echo "$(2)" > $(OUT)/vars.$(1); })
else
stamp =
endif
$(call stamp,data,$(TXT) $(DATA_BYTES) $(SEQ) $(COPIES) $(SEED))
$(call stamp,model,$(DIM) $(LAYERS) $(HEADS) $(KV_HEADS) $(FFN) $(SEED))
$(call stamp,train,$(BATCH) $(LR) $(WARMUP) $(STEPS) $(EVAL_EVERY))
$(call stamp,score,$(MC) $(SEED))
$(OUT)/vars.%: ;

# stories260K converted (its tokenizer.json is the data's tokenizer)
$(OUT)/stories260K/config.json: $(S260)/stories260K.bin
	$(TRAIN) --init $< -o $(OUT)/stories260K --steps 0

# raw text -> tokens -> SEQ-token rows (5% held out) -> masked train / valid
$(OUT)/tokens.msgpack.zst: $(OUT)/stories260K/config.json $(OUT)/vars.data
	if [ $(DATA_BYTES) -gt 0 ]; then head -c $(DATA_BYTES) $(TXT); else cat $(TXT); fi | \
	  $(TOK) -t $(OUT)/stories260K/tokenizer.json $(TOK_ARGS) -o $@
$(OUT)/rows.msgpack.zst: $(OUT)/tokens.msgpack.zst
	$(PACK) -L $(SEQ) --shuffle --seed $(SEED) $(PACK_SPLIT) $(PACK_MODE) $< -o $@
$(OUT)/rows.valid.msgpack.zst: $(OUT)/rows.msgpack.zst ;
$(OUT)/train.msgpack.zst: $(OUT)/rows.msgpack.zst
	$(MASK) --seed $(SEED) --copies $(COPIES) $< -o $@
$(OUT)/valid.msgpack.zst: $(OUT)/rows.valid.msgpack.zst
	$(MASK) --seed $$(( $(SEED) + 1 )) $< -o $@
VALID_P ?= 0.05
PACK_SPLIT ?= --split valid=$(VALID_P)
# dllm-pack's mode: empty = pretrain (documents joined and cut into rows)
PACK_MODE ?=

# the from-scratch model: a Llama config of the variables' shape (vocab size
# and token ids come from the data header)
$(OUT)/scratch-config.json: $(OUT)/vars.model
	printf '{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":%d,"intermediate_size":%d,"num_hidden_layers":%d,"num_attention_heads":%d,"num_key_value_heads":%d,"max_position_embeddings":%d,"rms_norm_eps":1e-5,"rope_theta":10000.0,"hidden_act":"silu","initializer_range":0.02,"tie_word_embeddings":true}\n' \
	  $(DIM) $(FFN) $(LAYERS) $(HEADS) $(KV_HEADS) $$(( $(SEQ) > 512 ? $(SEQ) : 512 )) > $@

# $(call evals,METRICS,KEY): "step value" lines of a --metrics file's evaluations
evals = awk '/"$(2)"/ { s = $$0; sub(/.*"step":/, "", s); sub(/,.*/, "", s); v = $$0; sub(/.*"$(2)":/, "", v); sub(/[,}].*/, "", v); print s, v }' $(1)
# $(call jnum,FILE,KEY): a number from a --summary JSON
jnum = tr -d ' \n' < $(1) | sed 's/.*"$(2)":\([^,}]*\).*/\1/; s/null/nan/'

.DELETE_ON_ERROR:
# `make` alone is the experiment's `all` (the rules above come first)
.DEFAULT_GOAL := all
