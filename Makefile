# dllm — top-level build.  `make` builds libdllm and every program into bin/;
# `make test`, `make test-asan`, `make demo`, `make bench`.  See README.md.
#
# Optional parts are tri-state: unset = auto-detect by test-compiling,
# 0 = off, 1 = required (fail loudly):  HAVE_OPENBLAS HAVE_CUDA HAVE_NCCL HAVE_MPI
# Overridable: CC CFLAGS MARCH CUDA_HOME NVCC NVCC_ARCH (e.g. "80 90").
# Every object depends on build/config.stamp, which holds the compiler, the
# flags and the HAVE_* results and is rewritten only when they change, so
# `make HAVE_OPENBLAS=0` (or another CFLAGS) rebuilds what it affects.
# `make print-flags` shows the compile flags without building.

CC        ?= cc
CFLAGS    ?= -O2 -g
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
NVCC_ARCH ?= 90
HASH      := \#
BUILD     := build
BIN       := bin

# -march only where the compiler targets x86-64 (x86-64-v2: SSE4.2/POPCNT, any
# x86 CPU since 2009); on aarch64 (GH200 nodes) and others the compiler's own
# default.  `make MARCH=-march=native` for a local build.
TARGET    := $(shell $(CC) -dumpmachine 2>/dev/null)
MARCH     ?= $(if $(filter x86_64-% amd64-%,$(TARGET)),-march=x86-64-v2,)

DL_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wshadow \
             -fopenmp -MMD -MP -Ishare/io -Ishare/tok -Ishare/model -Ikernels $(MARCH)
LDLIBS    :=

NODEPS_GOALS := clean help print-flags
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
LDLIBS += $(MSGPACK_LIB) -lzstd -lpcre2-8 -lutf8proc -ljansson -lm -lpthread -ldl
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
  # dlopen'ed when a CPU device opens, not linked (kernels/cpu/openblas.c:
  # start-up); the soname -lopenblas resolves to here is the one it opens
  OPENBLAS_SONAME := $(or $(shell objdump -p "$$($(CC) -print-file-name=libopenblas.so)" 2>/dev/null | awk '$$1 == "SONAME" { print $$2 }'),libopenblas.so.0)
  DL_CFLAGS += -DDL_HAVE_OPENBLAS -DDL_OPENBLAS_SONAME='"$(OPENBLAS_SONAME)"'
  $(info [x] OpenBLAS: CBLAS sgemm for CPU kernels ($(OPENBLAS_SONAME), opened at run time))
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
# CUDA, NCCL and MPI are detected (so HAVE_*=1 still fails loudly) and
# reported "used" once sources use them (kernels/cuda/*.cu; DL_HAVE_NCCL /
# DL_HAVE_MPI in share/model/dl_comm_nccl.c, dl_comm_mpi.c).  CUDA: with
# nvcc, kernels/cuda/*.cu join libdllm (DL_HAVE_CUDA) and every program
# links cudart + cuBLAS; a binary built so still runs without a GPU
# (--device cuda then fails with exit 4, "no CUDA device visible").
CUDA_SRC  := $(wildcard kernels/cuda/*.cu)
NCCL_USED := $(shell grep -rlsw DL_HAVE_NCCL share kernels train sample score 2>/dev/null | head -n 1)
MPI_USED  := $(shell grep -rlsw DL_HAVE_MPI share kernels train sample score 2>/dev/null | head -n 1)
CUDA_ARCHS := $(patsubst sm_%,%,$(patsubst compute_%,%,$(NVCC_ARCH)))
# no exceptions, no thread-safe statics: the host stubs then need nothing
# from libstdc++, which the programs no longer load (start-up, below)
NVCC_FLAGS := -std=c++17 -O2 -g -Ikernels $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
              -Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-fno-exceptions,-fno-threadsafe-statics -MMD -MP
ifeq ($(HAVE_CUDA),1)
  ifneq ($(CUDA_SRC),)
    DL_CFLAGS += -DDL_HAVE_CUDA
    # cuBLAS is dlopen'ed by the backend when a CUDA device opens (kernels/cuda/cuda.h): not linked.
    # The CUDA runtime is linked statically (nvcc's own default): libcudart.so + libstdc++ cost
    # every process 0.75 ms of loading, twice with the re-exec (share/io/dl_omp_env.h), and the
    # programs now start on machines without the CUDA toolkit (libcuda is opened on first use;
    # dllm-train with NCCL still links libnccl, and libstdc++ through it).
    # The run path stays for dlopen("libcublas.so.N").
    LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -lrt -lpthread -ldl
    NVCC_FLAGS += -DDL_CUDA_LIBDIR='"$(CUDA_HOME)/lib64"'
    $(info [x] CUDA: used ($(NVCC), sm_$(CUDA_ARCHS): kernels/cuda, cuBLAS))
  else
    $(info [x] CUDA: found ($(NVCC)), not used yet (no kernels/cuda/*.cu))
  endif
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
  COMM_CFLAGS += -DDL_HAVE_NCCL -I$(CUDA_HOME)/include
  COMM_LIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lnccl -lcudart_static -lrt -lpthread -ldl
  $(info [x] NCCL: found, $(if $(NCCL_USED),used (dllm-train --comm nccl),not used yet (no code calls it)))
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
  COMM_CFLAGS += -DDL_HAVE_MPI $(shell mpicc --showme:compile 2>/dev/null)
  COMM_LIBS   += $(shell mpicc --showme:link 2>/dev/null)
  $(info [x] MPI: found, $(if $(MPI_USED),used (dllm-train over mpirun / srun),not used yet (no code calls it)))
else
  $(info [ ] MPI: not used (HAVE_MPI=0 or no working mpicc: scripts/deps.sh install mpi; HAVE_MPI=1 to require))
endif

# ---------------------------------------------------------------- CUDA kernels on the CPU
# tests/cuda/emu runs kernels/cuda/*.cu on the CPU (any machine, nvcc or
# not) when the C++ compiler has C++20 (probed with <barrier>).
EMU_OK := $(shell printf '$(HASH)include <barrier>\nint main(){std::barrier<> b(1); b.arrive_and_wait(); return 0;}\n' \
    | $(CXX) -std=c++20 -pthread -x c++ - -o /dev/null 2>/dev/null && echo 1 || echo 0)
ifeq ($(EMU_OK),1)
  $(info [x] CUDA kernels on the CPU: tests/cuda/emu ($(CXX) -std=c++20))
else
  $(info [ ] CUDA kernels on the CPU: not tested ($(CXX) lacks C++20 <barrier>: apt-get install g++))
endif

# ---------------------------------------------------------------- config stamp
# What every object depends on besides its sources; the file changes only
# when this line does, so an unchanged configuration rebuilds nothing.
CONFIG_STAMP := $(BUILD)/config.stamp
CONFIG_LINE  := $(CC) | $(CFLAGS) $(DL_CFLAGS) $(COMM_CFLAGS) | $(LDLIBS) $(COMM_LIBS) | CUDA=$(HAVE_CUDA) NCCL=$(HAVE_NCCL) MPI=$(HAVE_MPI) $(NVCC_ARCH) | $(NVCC_FLAGS)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(CONFIG_STAMP) 2>/dev/null)" = '$(CONFIG_LINE)' ] || printf '%s\n' '$(CONFIG_LINE)' > $(CONFIG_STAMP); })
endif # SKIP_DETECT

# ---------------------------------------------------------------- sources
# libdllm.a: share/ + kernels/.  Each program X is X/main.c plus the archive
# build/X/libX.a (X/*.c but main.c), which its unit tests link too.
LIB_SRC  := $(wildcard share/*/*.c) $(wildcard kernels/*.c) $(wildcard kernels/cpu/*.c) $(wildcard kernels/ref/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
ifeq ($(HAVE_CUDA)$(if $(CUDA_SRC),1,0),11)
LIB_OBJ  += $(CUDA_SRC:%.cu=$(BUILD)/%.o)
endif
LIB      := $(BUILD)/libdllm.a
PROG_DIRS := $(foreach d,tok pack mask cat train sample score,$(if $(wildcard $(d)/main.c),$(d)))
PROGS    := $(PROG_DIRS:%=$(BIN)/dllm-%)
PROG_LIB  = $(BUILD)/$(1)/lib$(1).a
TEST_SRC := $(wildcard tests/unit/test_*.c)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FAULT_SO := $(BUILD)/tests/fault/inject.so
# bench/ops_bench: kernel throughput through kernels.h (bench/gpu.sh); built
# with everything so that CI compiles it
OPS_BENCH := $(BUILD)/bench/ops_bench
EMU_TEST  := $(if $(filter 1,$(EMU_OK)),$(BUILD)/tests/test_backend_ops_emu,)

# Unit tests that need a program's code: test name -> program folders whose
# archives it links (and whose headers it sees).  Others link libdllm only.
TEST_PROGS_test_show  := sample
TEST_PROGS_test_score := score
TEST_PROGS_test_family := sample
# unit tests that reach dl_comm link the communication libraries too (as dllm-train)
TEST_LIBS_test_comm := $(COMM_LIBS)

.PHONY: all lib test test-asan test-cuda test-cuda-emu demo bench clean help print-flags
all: $(PROGS) $(TESTS) $(FAULT_SO) $(OPS_BENCH) $(EMU_TEST)
lib: $(LIB)

# The communication backends (share/model/dl_comm*.c) alone see MPI / NCCL
# headers; dllm-train and the unit tests that use dl_comm link their libraries.
$(BUILD)/share/model/dl_comm.o $(BUILD)/share/model/dl_comm_%.o: DL_CFLAGS += $(COMM_CFLAGS)
LDLIBS_train := $(COMM_LIBS)

$(CONFIG_STAMP): ;
$(BUILD)/%.o: %.c $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DL_CFLAGS) -c $< -o $@

# token selection must round as the CPU does: no fused multiply-adds
$(BUILD)/kernels/cuda/select.o: NVCC_FLAGS += -fmad=false
$(BUILD)/%.o: %.cu $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# build/X/libX.a from X/*.c but main.c; $(BIN)/dllm-X from main.o, it, libdllm
define prog_rule
$(call PROG_LIB,$(1)): $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
$(BIN)/dllm-$(1): $(BUILD)/$(1)/main.o $(call PROG_LIB,$(1)) $(LIB)
	@mkdir -p $(BIN)
	$$(CC) $$(CFLAGS) $$(DL_CFLAGS) $$^ -o $$@ $$(LDLIBS) $$(LDLIBS_$(1))
endef
$(foreach d,$(PROG_DIRS),$(eval $(call prog_rule,$(d))))

define test_rule
$(BUILD)/tests/$(1): tests/unit/$(1).c $(foreach p,$(TEST_PROGS_$(1)),$(call PROG_LIB,$(p))) $(LIB) $(CONFIG_STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(DL_CFLAGS) -Itests/unit $(TEST_PROGS_$(1):%=-I%) $$< \
	  $(foreach p,$(TEST_PROGS_$(1)),$(call PROG_LIB,$(p))) $(LIB) -o $$@ $$(LDLIBS) $$(TEST_LIBS_$(1))
endef
$(foreach t,$(TEST_SRC:tests/unit/%.c=%),$(eval $(call test_rule,$(t))))

$(OPS_BENCH): bench/ops_bench.c $(LIB) $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DL_CFLAGS) $< $(LIB) -o $@ $(LDLIBS)

# tests/cuda/emu: the CUDA backend compiled for the host (DL_CU_EMU: cu_emu.h
# stands for the CUDA runtime, cuBLAS and the execution model), whatever
# nvcc says: test_backend_ops_emu runs every CUDA op against the reference
# backend (the tensor-core attention on its bf16 cases without probabilities).
EMU_CXX   = $(CXX) -std=c++20 $(CFLAGS) -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -DDL_CU_EMU \
            -DDL_HAVE_CUDA -Ikernels -Ikernels/cuda -Itests/cuda/emu
EMU_HDR   := tests/cuda/emu/cu_emu.h tests/cuda/emu/mma.h $(wildcard kernels/cuda/*.h) kernels/kernels.h \
             kernels/backend.h kernels/select_rules.h kernels/kphilox.h
EMU_OBJ   := $(patsubst kernels/cuda/%.cu,$(BUILD)/emu/%.o,$(wildcard kernels/cuda/*.cu)) $(BUILD)/emu/cu_emu.o \
             $(BUILD)/emu/dispatch.o
$(BUILD)/emu/%.o: kernels/cuda/%.cu $(EMU_HDR) $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(EMU_CXX) -x c++ -c $< -o $@
$(BUILD)/emu/cu_emu.o: tests/cuda/emu/cu_emu.cpp $(EMU_HDR) $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(EMU_CXX) -c $< -o $@
$(BUILD)/emu/dispatch.o: kernels/dispatch.c $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DL_CFLAGS) -DDL_HAVE_CUDA -c $< -o $@
$(BUILD)/emu/test_backend_ops.o: tests/unit/test_backend_ops.c $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DL_CFLAGS) -DDL_OPS_EMU -Itests/unit -c $< -o $@
$(BUILD)/tests/test_backend_ops_emu: $(BUILD)/emu/test_backend_ops.o $(EMU_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CFLAGS) -fopenmp $^ -o $@ $(filter-out -lcudart_static,$(LDLIBS))
# the programs linked with the emulated backend (make test-cuda-emu: tests/cuda/e2e.sh through them);
# with MPI, dllm-train's NCCL path runs on tests/cuda/emu/nccl_emu.c (NCCL over MPI, host buffers)
EMU_PROGS := $(PROG_DIRS:%=$(BUILD)/emu/bin/dllm-%)
ifeq ($(HAVE_MPI),1)
# (dl_comm.c too: it says which kinds are built, and the real build may have no NCCL)
EMU_OBJ_train := $(BUILD)/emu/dl_comm.o $(BUILD)/emu/dl_comm_nccl.o $(BUILD)/emu/nccl_emu.o
$(BUILD)/emu/dl_comm.o $(BUILD)/emu/dl_comm_nccl.o: $(BUILD)/emu/%.o: share/model/%.c tests/cuda/emu/nccl/nccl.h \
                                                   tests/cuda/emu/nccl/cuda_runtime.h $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DL_CFLAGS) -Itests/cuda/emu/nccl -DDL_HAVE_NCCL -DDL_HAVE_MPI \
	  $(shell mpicc --showme:compile 2>/dev/null) -c $< -o $@
$(BUILD)/emu/nccl_emu.o: tests/cuda/emu/nccl_emu.c tests/cuda/emu/nccl/nccl.h tests/cuda/emu/nccl/cuda_runtime.h \
                         $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(shell mpicc --showme:compile 2>/dev/null) -c $< -o $@
endif
define emu_prog_rule
$(BUILD)/emu/bin/dllm-$(1): $(BUILD)/$(1)/main.o $(call PROG_LIB,$(1)) $(EMU_OBJ_$(1)) $(EMU_OBJ) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CXX) $$(CFLAGS) -fopenmp $$^ -o $$@ $$(filter-out -lnccl -lcudart_static,$$(LDLIBS) $$(LDLIBS_$(1)))
endef
$(foreach d,$(PROG_DIRS),$(eval $(call emu_prog_rule,$(d))))

# The fault-injection shim (LD_PRELOAD) used by tests/cli/fault.sh and kill.sh.
$(FAULT_SO): tests/fault/inject.c $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=c11 -Wall -Wextra -fPIC -shared $< -o $@ -ldl

# The tests find the build through DLLM_BUILD (unit test binaries) and
# DLLM_BIN (programs), so one suite runs either build.
TEST_ENV = DLLM_BUILD=$(BUILD) DLLM_BIN=$(CURDIR)/$(BIN)
test: all
	@$(TEST_ENV) $(SAN_ENV) tests/run.sh

# The whole suite under AddressSanitizer + UBSan (any UB aborts) with leak
# detection, in its own build-asan/ and bin-asan/ (the plain build is left
# alone).  tests/lsan.supp silences only third-party libraries' own leaks
# (libgomp, OpenBLAS thread pools), never dllm code.
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
test-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=bin-asan CFLAGS="$(SAN_CFLAGS)" DLLM_SAN=1 test
# Reports go to files DLLM_SAN_LOG.<pid> that tests/run.sh turns into
# failures: a report inside a pipeline or under an expected exit code (ASan's
# own exit code, 99 here, could be lost there) still fails the suite.
ifeq ($(DLLM_SAN),1)
SAN_LOG = $(CURDIR)/$(BUILD)/san/report
SAN_ENV = DLLM_SAN_LOG=$(SAN_LOG) \
          ASAN_OPTIONS=detect_leaks=1:exitcode=99:log_path=$(SAN_LOG) \
          LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99:log_path=$(SAN_LOG)
endif

# The GPU tests (tests/cuda/check.sh; "skipped: no GPU" without one).
# tests/run-cuda.sh DEBDIR OUTDIR is the whole offline GPU-machine run.
test-cuda: all
	@tests/cuda/check.sh

# The CUDA backend on the CPU end to end (tests/cuda/emu): tests/cuda/e2e.sh's
# train / resume / sample / score checks, CPU against the emulated GPU.
# Minutes (every lane a fiber); .ci/run runs it, make test does not.
test-cuda-emu: all $(if $(filter 1,$(EMU_OK)),$(EMU_PROGS),)
	@tests/cuda/emu/e2e.sh $(BUILD)

demo: all
	@scripts/demo.sh

bench: all
	@bench/run.sh

clean:
	rm -rf $(BUILD) bin build-fuzz build-asan bin-asan

help:
	@echo "make [all|test|test-asan|test-cuda|test-cuda-emu|fuzz [FUZZ_SECONDS=N]|demo|bench|clean|print-flags]  HAVE_OPENBLAS/HAVE_CUDA/HAVE_NCCL/HAVE_MPI=0|1  MARCH=..."

# The target triple and the flags a build would use (no detection, no build).
print-flags:
	@echo "target: $(TARGET)"
	@echo "cflags: $(CFLAGS) $(DL_CFLAGS)"

# ---------------------------------------------------------------- fuzzing
# `make fuzz`: each libFuzzer target tests/fuzz/fuzz_NAME.c becomes
# build-fuzz/fuzz_NAME, linked with the library (and cat/'s JSON code,
# score/task_parse.c) compiled again by FUZZ_CC with the same sanitizers and
# coverage instrumentation into build-fuzz/ (never mixed with build/).
# clang with its libFuzzer runtime is an optional part: only this goal asks
# for it (scripts/deps.sh check fuzz), installing it when missing.
# `make fuzz FUZZ_SECONDS=N` also runs every target N seconds
# (tests/fuzz/run.sh; last line "N targets, N executions, N crashes").
FUZZ_CC      ?= clang
FUZZ_CFLAGS  ?= -O2 -g
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# clang-only notes on code tuned for gcc (omp simd loops clang does not vectorize,
# gcc's optimize attribute): not findings, kept out of the build log.
FUZZ_WARN    := -Wno-pass-failed -Wno-unknown-attributes
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJ_SRC := $(LIB_SRC) $(filter-out cat/main.c,$(wildcard cat/*.c)) score/task_parse.c
FUZZ_OBJ     := $(FUZZ_OBJ_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_LIB     := $(FUZZ_BUILD)/libdllm-fuzz.a
FUZZ_STAMP   := $(FUZZ_BUILD)/config.stamp

ifneq ($(filter fuzz,$(MAKECMDGOALS)),)
FUZZ_MISSING := $(shell FUZZ_CC=$(FUZZ_CC) scripts/deps.sh check fuzz)
ifneq ($(strip $(FUZZ_MISSING)),)
  $(info dllm: fuzzing needs: $(FUZZ_MISSING) -> scripts/deps.sh install fuzz)
  FUZZ_DEPS_RC := $(shell FUZZ_CC=$(FUZZ_CC) scripts/deps.sh install fuzz >&2; echo $$?)
  ifneq ($(FUZZ_DEPS_RC),0)
    $(error dllm: could not install $(FUZZ_MISSING) for make fuzz (FUZZ_CC=$(FUZZ_CC)))
  endif
endif
# the fuzz build is CPU-only: no CUDA backend in it (nvcc objects are not clang's)
FUZZ_DL_CFLAGS := $(filter-out -DDL_HAVE_CUDA,$(DL_CFLAGS))
FUZZ_LDLIBS    := $(filter-out -lcudart_static,$(LDLIBS))
FUZZ_LINE := $(FUZZ_CC) | $(FUZZ_CFLAGS) $(FUZZ_SAN) $(FUZZ_DL_CFLAGS) $(FUZZ_WARN) | $(FUZZ_LDLIBS)
$(shell mkdir -p $(FUZZ_BUILD) && { [ "$$(cat $(FUZZ_STAMP) 2>/dev/null)" = '$(FUZZ_LINE)' ] || printf '%s\n' '$(FUZZ_LINE)' > $(FUZZ_STAMP); })
endif

.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	@if [ -n "$(FUZZ_SECONDS)" ]; then tests/fuzz/run.sh $(FUZZ_SECONDS); fi

$(FUZZ_STAMP): ;
$(FUZZ_BUILD)/%.o: %.c $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(FUZZ_DL_CFLAGS) $(FUZZ_WARN) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB) $(FUZZ_STAMP)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $(FUZZ_DL_CFLAGS) -Itests/fuzz -Icat -Iscore $< $(FUZZ_LIB) \
	  -o $@ $(FUZZ_LDLIBS)

PROG_OBJ := $(foreach d,$(PROG_DIRS),$(patsubst %.c,$(BUILD)/%.o,$(wildcard $(d)/*.c)))
-include $(LIB_OBJ:.o=.d) $(PROG_OBJ:.o=.d) $(TESTS:%=%.d) $(FUZZ_OBJ:.o=.d) $(FUZZ_BINS:%=%.d)
