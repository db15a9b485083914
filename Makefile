# lamp — build, test and sanitize.
#
#   make            optimized OpenMP build of ./run and ./tokenizer
#   make test       build and run the Check test suites (needs libcheck)
#   make debug      -O0 -g build of everything into build/debug/
#   make asan       AddressSanitizer + UBSan build of the tests, run
#   make run        tell a story with the embedded default model
#   make clean      remove what the build made
#   make NO_OMP=1   the same, without OpenMP (one thread; SIMD pragmas kept)
#   make CC=clang   any C11 compiler with OpenMP works
#
# Python-side checks (need the virtualenv that .ci/run creates):
#   make test-python   tokenizer vs sentencepiece on whole files, golden regeneration
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
ALL_CFLAGS = -std=c11 $(WARNINGS) $(CFLAGS) $(OMP)
LDLIBS = -lm
CHECK_LIBS = $(shell pkg-config --cflags --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lpthread)
PYTHON ?= $(HOME)/.cache/lamp/venv/bin/python

TEST_NAMES = tokenizer sampler forward cli docs
TESTS = $(addprefix $(OUT)/tests/test_,$(TEST_NAMES))
PROGRAMS = $(OUT)/run $(OUT)/tokenizer
COMMON = tokenizer.c tokenizer.h util.h

.PHONY: all tests test debug asan run clean test-python goldens docs-images
all: $(PROGRAMS)
tests: $(TESTS)

# `make run` tells a story, while ./run is the program. Make cannot have a
# file and a command both named "run", so when the command line asks for
# `make run` the target is the command, and the program is built by a
# sub-make (where the goal is `all` and "run" is the file again).
ifeq ($(filter run,$(MAKECMDGOALS)),)
$(OUT)/run: run.c $(COMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ run.c tokenizer.c $(LDLIBS)
endif

$(OUT)/tokenizer: $(COMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DTOKENIZER_MAIN -o $@ tokenizer.c $(LDLIBS)

# Tests include run.c (with its main() left out) to reach its internals, so
# the functions only main() uses are unused there: silence just that warning.
$(OUT)/tests/test_%: tests/test_%.c tests/testutil.h run.c $(COMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-unused-function -I. -o $@ $< tokenizer.c $(CHECK_LIBS) $(LDLIBS)

# Every suite runs, even after a failure; the exit status says if any failed.
# The CLI suite runs the programs of this build (LAMP_BIN).
test: $(PROGRAMS) $(TESTS)
	@failed=0; for t in $(TESTS); do \
	  echo "== $$t"; LAMP_BIN=$(OUT) ./$$t || failed=1; \
	done; \
	if [ $$failed = 0 ]; then echo "all test suites passed"; else echo "SOME TEST SUITES FAILED"; fi; \
	exit $$failed

debug:
	$(MAKE) --no-print-directory OUT=build/debug CFLAGS="-O0 -g" all $(addprefix build/debug/tests/test_,$(TEST_NAMES))

# -fno-sanitize-recover makes the first UBSan finding fatal, so it fails the test.
asan:
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	$(MAKE) --no-print-directory OUT=build/asan \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

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
	$(PYTHON) tests/golden/check_goldens.py

# Images in docs/ are made from sources kept beside them (needs graphviz).
docs-images:
	dot -Tpng -Gdpi=110 docs/img/block.dot -o docs/img/block.png

goldens:
	$(PYTHON) tests/golden/gen_tokenizer.py
	$(PYTHON) tests/golden/gen_forward.py
	$(PYTHON) tests/golden/gen_sampler.py

clean:
	rm -rf run tokenizer tests/test_tokenizer tests/test_sampler tests/test_forward tests/test_cli build tests/tmp
