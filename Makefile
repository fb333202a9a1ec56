# stateio: a state log (snapshots + updates) as a C library and a SQLite extension.
#   make          build the library (build/libstateio.a) and the extension (stateio.so)
#   make test     build and run every test (C tests, also under ASan+UBSan; Tcl tests)
#   make demo     the main job: build the extension and show it on an example log
#   make fuzz     run the libFuzzer target (FUZZ_SECONDS, default 60)
#   make bench    run the benchmark (figures only, never a pass/fail)

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
CPPFLAGS = -Isrc
LDLIBS   = -lxxhash
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Debian packages the build and the tests need; installed when missing and root.
DEBS = libsqlite3-dev libxxhash-dev libsqlite3-tcl sqlite3 tcl libssl-dev \
       clang libclang-rt-14-dev valgrind strace python3

LIB_SRC = $(wildcard src/*.c)
LIB_HDR = $(wildcard src/*.h)
EXT_SRC = $(wildcard ext/*.c)
EXT_HDR = $(wildcard ext/*.h)
CTEST_SRC = $(wildcard test/*_test.c)
CTESTS      = $(patsubst test/%.c,build/%,$(CTEST_SRC))
CTESTS_SAN  = $(patsubst test/%.c,build/san/%,$(CTEST_SRC))

all: deps build/libstateio.a stateio.so

# ---------------------------------------------------------------- deps
.PHONY: deps
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >build-deps.log 2>&1 \
	      || { cat build-deps.log; echo "apt-get install failed:$$missing"; exit 1; }; \
	    rm -f build-deps.log; \
	  else \
	    echo "missing Debian packages:$$missing (run make as root, or apt-get install them)"; exit 1; \
	  fi; \
	fi

# ---------------------------------------------------------------- library
build/%.o: src/%.c $(LIB_HDR) | build
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -fPIC -c -o $@ $<

build/san/%.o: src/%.c $(LIB_HDR) | build/san
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -c -o $@ $<

build/libstateio.a: $(patsubst src/%.c,build/%.o,$(LIB_SRC))
	rm -f $@ && ar rcs $@ $^

build/san/libstateio.a: $(patsubst src/%.c,build/san/%.o,$(LIB_SRC))
	rm -f $@ && ar rcs $@ $^

build build/san:
	mkdir -p $@

# ---------------------------------------------------------------- extension
stateio.so: $(EXT_SRC) $(EXT_HDR) $(LIB_SRC) $(LIB_HDR)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -Iext -fPIC -shared -o $@ $(EXT_SRC) $(LIB_SRC) $(LDLIBS)

# The same with ASan+UBSan, for the sanitized run of the Tcl tests.
build/san/stateio.so: $(EXT_SRC) $(EXT_HDR) $(LIB_SRC) $(LIB_HDR) | build/san
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -Iext -fPIC -shared -o $@ $(EXT_SRC) $(LIB_SRC) $(LDLIBS)

# ---------------------------------------------------------------- tests
build/%_test: test/%_test.c test/testhelp.h build/libstateio.a | build
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -Itest -o $@ $< build/libstateio.a $(LDLIBS) -lcrypto

build/san/%_test: test/%_test.c test/testhelp.h build/san/libstateio.a | build/san
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -Itest -o $@ $< build/san/libstateio.a $(LDLIBS) -lcrypto

.PHONY: test
test: all $(CTESTS) $(CTESTS_SAN) build/san/stateio.so
	@sh test/run-all.sh

# ---------------------------------------------------------------- demo
.PHONY: demo
demo: all
	@sh test/demo.sh

clean:
	rm -rf build stateio.so

.PHONY: all clean

# ---------------------------------------------------------------- fuzzing, valgrind
# fuzz/fuzz_stateio.c is a libFuzzer target (clang only). test/fuzz-short.sh
# builds it, replays test/fuzz-regress/ and fuzzes for a fixed time; make
# test runs it for 20 s (from test/run-all.sh), make fuzz for FUZZ_SECONDS.
# make valgrind runs every build/*_test under valgrind with smaller sizes.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

build/fuzz_stateio: fuzz/fuzz_stateio.c $(LIB_SRC) $(LIB_HDR) | build
	$(FUZZ_CC) $(FUZZFLAGS) $(WARN) $(CPPFLAGS) -o $@ fuzz/fuzz_stateio.c $(LIB_SRC) $(LDLIBS)

.PHONY: fuzz valgrind
fuzz: build/fuzz_stateio
	@sh test/fuzz-short.sh $(FUZZ_SECONDS)

valgrind: $(CTESTS)
	@sh test/valgrind.sh

# ---------------------------------------------------------------- bench
# bench/bench.c measures every figure next to its peer and prints a table
# (never part of make test). BENCH_ARGS go to it: --quick for a ~15 s
# smoke run, --reps N, --dir DIR, --only 1,5, ... (build/bench --help).
BENCH_ARGS ?=

build/bench: bench/bench.c build/libstateio.a $(LIB_HDR) | build
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -o $@ bench/bench.c build/libstateio.a $(LDLIBS) -lsqlite3 -lm

.PHONY: bench
bench: all build/bench
	./build/bench $(BENCH_ARGS)
