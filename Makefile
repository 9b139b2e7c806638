# dllm — top-level build.  `make` builds libdllm and every program into bin/;
# `make test`, `make demo`, `make bench`.  See README.md.
#
# Optional parts are tri-state: unset = auto-detect by test-compiling,
# 0 = off, 1 = required (fail loudly):  HAVE_OPENBLAS HAVE_CUDA HAVE_NCCL HAVE_MPI
# Overridable: CC CFLAGS CUDA_HOME NVCC NVCC_ARCH (e.g. "80 90").

CC        ?= cc
CFLAGS    ?= -O2 -g
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
NVCC_ARCH ?= 90
HASH      := \#
BUILD     := build

DL_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wshadow \
             -fopenmp -MMD -MP -Ishare/io -Ishare/tok -Ishare/model -Ikernels -march=x86-64-v2
LDLIBS    :=

NODEPS_GOALS := clean help
ifeq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
  SKIP_DETECT := 1
endif

ifndef SKIP_DETECT
# ---------------------------------------------------------------- required
MISSING := $(shell CC=$(CC) scripts/deps.sh check)
ifneq ($(strip $(MISSING)),)
  $(info dllm: missing: $(MISSING) -> scripts/deps.sh install)
  DEPS_RC := $(shell CC=$(CC) scripts/deps.sh install $(MISSING) >&2; echo $$?)
  ifneq ($(DEPS_RC),0)
    $(error dllm: could not install $(MISSING); install them and re-run make)
  endif
endif
# msgpack-c >= 6 is "msgpack-c" (libmsgpack-c); Debian 12's 4.x is "msgpack" (libmsgpackc)
MSGPACK_LIB := $(shell printf '$(HASH)include <msgpack.h>\nint main(void){msgpack_sbuffer b; msgpack_sbuffer_init(&b); return 0;}\n' \
  | $(CC) -x c - -lmsgpack-c -o /dev/null 2>/dev/null && echo -lmsgpack-c || echo -lmsgpackc)
LDLIBS += $(MSGPACK_LIB) -lzstd -lpcre2-8 -lutf8proc -ljansson -lm -lpthread
$(info dllm build checklist:)
$(info [x] msgpack-c ($(MSGPACK_LIB)), zstd, PCRE2, utf8proc, jansson, OpenMP)

# ---------------------------------------------------------------- OpenBLAS
OPENBLAS_FOUND := $(if $(filter 0,$(HAVE_OPENBLAS)),0,$(shell printf '$(HASH)include <cblas.h>\nint main(void){float a=1; return (int)cblas_sdot(1,&a,1,&a,1)-1;}\n' \
    | $(CC) -x c - -lopenblas -o /dev/null 2>/dev/null && echo 1 || echo 0))
ifeq ($(HAVE_OPENBLAS)$(OPENBLAS_FOUND),10)
  $(error dllm: HAVE_OPENBLAS=1 but cblas.h / -lopenblas do not compile and link (apt-get install libopenblas-dev))
endif
HAVE_OPENBLAS := $(if $(HAVE_OPENBLAS),$(HAVE_OPENBLAS),$(OPENBLAS_FOUND))
ifeq ($(HAVE_OPENBLAS),1)
  DL_CFLAGS += -DDL_HAVE_OPENBLAS
  LDLIBS    += -lopenblas
  $(info [x] OpenBLAS: CBLAS sgemm for CPU kernels)
else
  $(info [ ] OpenBLAS: not used (HAVE_OPENBLAS=0 or not found; HAVE_OPENBLAS=1 to require); plain-C GEMM fallback)
endif

# ---------------------------------------------------------------- CUDA / NCCL
CUDA_FOUND := $(if $(filter 0,$(HAVE_CUDA)),0,$(shell printf 'int main(void){return 0;}\n' > $(BUILD)-cuda-probe.cu 2>/dev/null; \
    $(NVCC) -c $(BUILD)-cuda-probe.cu -o /dev/null >/dev/null 2>&1 && echo 1 || echo 0; rm -f $(BUILD)-cuda-probe.cu))
ifeq ($(HAVE_CUDA)$(CUDA_FOUND),10)
  $(error dllm: HAVE_CUDA=1 but $(NVCC) cannot compile a .cu file (set CUDA_HOME or NVCC))
endif
HAVE_CUDA := $(if $(HAVE_CUDA),$(HAVE_CUDA),$(CUDA_FOUND))
ifeq ($(HAVE_CUDA),1)
  $(info [x] CUDA: $(NVCC), sm_$(NVCC_ARCH) (GPU code builds; GPU tests need a visible GPU))
else
  $(info [ ] CUDA: not used (HAVE_CUDA=0, or no working nvcc at $(NVCC); HAVE_CUDA=1 to require))
endif
NCCL_FOUND := $(if $(filter 0,$(HAVE_NCCL)),0,$(shell printf '$(HASH)include <nccl.h>\nint main(void){int v; return ncclGetVersion(&v)!=ncclSuccess;}\n' \
    | $(CC) -x c - -I$(CUDA_HOME)/include -L$(CUDA_HOME)/lib64 -lnccl -o /dev/null 2>/dev/null && echo 1 || echo 0))
ifeq ($(HAVE_NCCL)$(NCCL_FOUND),10)
  $(error dllm: HAVE_NCCL=1 but nccl.h / -lnccl are not found under CUDA_HOME=$(CUDA_HOME))
endif
HAVE_NCCL := $(if $(HAVE_NCCL),$(HAVE_NCCL),$(NCCL_FOUND))
ifeq ($(HAVE_NCCL),1)
  $(info [x] NCCL: multi-GPU all-reduce available)
else
  $(info [ ] NCCL: not used (HAVE_NCCL=0 or not found; HAVE_NCCL=1 to require))
endif
MPI_FOUND := $(if $(filter 0,$(HAVE_MPI)),0,$(shell command -v mpicc >/dev/null 2>&1 && printf '$(HASH)include <mpi.h>\nint main(void){return MPI_Init(0,0);}\n' \
    | mpicc -x c - -o /dev/null 2>/dev/null && echo 1 || echo 0))
ifeq ($(HAVE_MPI)$(MPI_FOUND),10)
  $(error dllm: HAVE_MPI=1 but mpicc cannot build an MPI program (apt-get install libopenmpi-dev))
endif
HAVE_MPI := $(if $(HAVE_MPI),$(HAVE_MPI),$(MPI_FOUND))
ifeq ($(HAVE_MPI),1)
  $(info [x] MPI: multi-process CPU runs)
else
  $(info [ ] MPI: not used (HAVE_MPI=0 or no working mpicc; HAVE_MPI=1 to require))
endif
endif # SKIP_DETECT

# ---------------------------------------------------------------- sources
LIB_SRC  := $(wildcard share/*/*.c) $(wildcard kernels/*.c) $(wildcard kernels/cpu/*.c) $(wildcard kernels/ref/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libdllm.a
PROG_DIRS := tok pack mask cat train sample score
PROGS    := $(foreach d,$(PROG_DIRS),$(if $(wildcard $(d)/*.c),bin/dllm-$(d)))
TEST_SRC := $(wildcard tests/unit/test_*.c)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all lib test test-cuda demo bench clean help
all: $(PROGS) $(TESTS)
lib: $(LIB)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# bin/dllm-X is linked from every X/*.c plus libdllm
define prog_rule
bin/dllm-$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard $(1)/*.c)) $(LIB)
	@mkdir -p bin
	$$(CC) $$(CFLAGS) $$(DL_CFLAGS) $$^ -o $$@ $$(LDLIBS)
endef
$(foreach d,$(PROG_DIRS),$(if $(wildcard $(d)/*.c),$(eval $(call prog_rule,$(d)))))

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DL_CFLAGS) -Itests/unit $< $(LIB) -o $@ $(LDLIBS)

test: all
	@tests/run.sh

test-cuda: all
	@tests/run-cuda.sh

demo: all
	@scripts/demo.sh

bench: all
	@bench/run.sh

clean:
	rm -rf $(BUILD) bin

help:
	@echo "make [all|test|test-cuda|demo|bench|clean]  HAVE_OPENBLAS/HAVE_CUDA/HAVE_NCCL/HAVE_MPI=0|1"

PROG_OBJ := $(foreach d,$(PROG_DIRS),$(patsubst %.c,$(BUILD)/%.o,$(wildcard $(d)/*.c)))
-include $(LIB_OBJ:.o=.d) $(PROG_OBJ:.o=.d) $(TESTS:%=%.d)
