# SPDX-License-Identifier: MIT
# stateio: a state log (snapshots + updates) as a C library, a SQLite
# extension and a command-line tool. Linux only.
#
#   make            build everything (never installs a package):
#                   build/libstateio.a, build/libstateio.so.$(VERSION) (+ links),
#                   stateio.so (the SQLite extension), build/stateio (the tool)
#   make deps       install the Debian packages the build and the tests need
#                   (as root; otherwise it names what is missing and stops)
#   make test       deps, then build and run every test (also under ASan+UBSan)
#   make demo       the packages the demo needs, the extension, then the demo
#   make install    PREFIX (default /usr/local) and DESTDIR; make uninstall
#   make fuzz       run the libFuzzer target (FUZZ_SECONDS, default 60)
#   make valgrind   the C tests under valgrind's memcheck
#   make bench      run the benchmark (figures only, never a pass/fail)
#
# A bare Debian machine needs make and a C compiler before anything else:
# apt-get install -y make gcc (CC=clang works too).

.DEFAULT_GOAL := all

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
CPPFLAGS = -Isrc
LDLIBS   = -lxxhash
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# The version is the header's; the shared library's SONAME carries its major.
VERSION := $(shell sed -n 's/^\#define STATEIO_VERSION  *"\(.*\)"/\1/p' src/stateio.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))

PREFIX      ?= /usr/local
DESTDIR     ?=
libdir       = $(PREFIX)/lib
includedir   = $(PREFIX)/include
bindir       = $(PREFIX)/bin
mandir       = $(PREFIX)/share/man
pkgconfigdir = $(libdir)/pkgconfig
sqlite3dir   = $(libdir)/sqlite3

# ---------------------------------------------------------------- packages
# Debian packages. The demo needs the compiler's libraries for the extension
# and the sqlite3 shell; the tests need the rest too (Tcl and its SQLite
# binding, OpenSSL's libcrypto for SHA-256, clang's libFuzzer, valgrind,
# strace, Python, man). pkg-config is added when the command is missing.
DEMO_DEBS = libc6-dev libsqlite3-dev libxxhash-dev sqlite3
DEBS      = $(DEMO_DEBS) libsqlite3-tcl tcl libssl-dev clang libclang-rt-14-dev \
            valgrind strace python3 man-db

# install_debs LIST: install what of LIST is missing (apt-get, as root), or
# name it and stop.
define install_debs
@missing=""; \
	if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "make: no dpkg-query: not a Debian system; install the equivalents of: $(1) pkg-config"; exit 1; \
	fi; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ "$(2)" = pkg-config ] && ! command -v pkg-config >/dev/null 2>&1; then missing="$$missing pkgconf"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >build-deps.log 2>&1 \
	      || { cat build-deps.log; echo "apt-get install failed:$$missing"; exit 1; }; \
	    rm -f build-deps.log; \
	  else \
	    echo "missing Debian packages:$$missing (run make $@ as root, or apt-get install them)"; exit 1; \
	  fi; \
	fi
endef

.PHONY: deps deps-demo
deps:
	$(call install_debs,$(DEBS),pkg-config)
deps-demo:
	$(call install_debs,$(DEMO_DEBS))

# The package step comes before every compile when a goal needs it: each
# compile has it as an order-only prerequisite, so make -j cannot start a
# compile before the packages are in. A plain `make` has none.
ifneq ($(filter deps test,$(MAKECMDGOALS)),)
PKG_STEP := deps
else ifneq ($(filter deps-demo demo,$(MAKECMDGOALS)),)
PKG_STEP := deps-demo
else
PKG_STEP :=
endif

# ---------------------------------------------------------------- sources
LIB_SRC  = $(wildcard src/*.c)
LIB_HDR  = $(wildcard src/*.h)
PUB_HDR  = src/stateio.h
EXT_SRC  = $(wildcard ext/*.c)
EXT_HDR  = $(wildcard ext/*.h)
CLI_SRC  = $(wildcard cli/*.c)
CLI_HDR  = $(wildcard cli/*.h)
LIB_OBJ      = $(patsubst src/%.c,build/%.o,$(LIB_SRC))
LIB_OBJ_SAN  = $(patsubst src/%.c,build/san/%.o,$(LIB_SRC))
CLI_OBJ      = $(patsubst cli/%.c,build/cli/%.o,$(CLI_SRC))
CLI_OBJ_SAN  = $(patsubst cli/%.c,build/san/cli/%.o,$(CLI_SRC))
CTEST_SRC  = $(wildcard test/*_test.c)
CTESTS     = $(patsubst test/%.c,build/%,$(CTEST_SRC))
CTESTS_SAN = $(patsubst test/%.c,build/san/%,$(CTEST_SRC))
SHLIB      = build/libstateio.so.$(VERSION)
SHLINKS    = build/libstateio.so.$(SOMAJOR) build/libstateio.so

all: build/libstateio.a $(SHLIB) $(SHLINKS) stateio.so build/stateio build/stateio.pc

build build/san build/cli build/san/cli:
	mkdir -p $@

# Everything is built again when the compiler or its flags change
# (make CC=clang after make): build/cc.id changes only then.
CC_ID = $(CC) | $(shell $(CC) --version 2>/dev/null | head -n 1) | $(CFLAGS) | $(LDFLAGS)
build/cc.id: FORCE | build
	@echo '$(CC_ID)' >$@.new; if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

# The sanitizer runtime of $(CC), for programs that load a sanitized shared
# object (tclsh, sqlite3, python3 loading build/san/stateio.so): clang's
# libclang_rt.asan-ARCH.so, else gcc's libasan.so (clang finds gcc's too,
# so its own is asked for first).
SAN_RT = $(shell arch=$$($(CC) -dumpmachine 2>/dev/null | cut -d- -f1); \
  for f in libclang_rt.asan-$$arch.so libasan.so; do \
    p=$$($(CC) -print-file-name=$$f 2>/dev/null); \
    if [ "$${p#/}" != "$$p" ] && [ -f "$$p" ]; then echo "$$p"; break; fi; \
  done)

# ---------------------------------------------------------------- library
build/%.o: src/%.c $(LIB_HDR) build/cc.id | build $(PKG_STEP)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -fPIC -c -o $@ $<

build/san/%.o: src/%.c $(LIB_HDR) build/cc.id | build/san $(PKG_STEP)
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -c -o $@ $<

build/libstateio.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

build/san/libstateio.a: $(LIB_OBJ_SAN)
	rm -f $@ && ar rcs $@ $^

# The shared library exports the public names only (pkg/libstateio.map).
$(SHLIB): $(LIB_OBJ) pkg/libstateio.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libstateio.so.$(SOMAJOR) \
	  -Wl,--version-script=pkg/libstateio.map -o $@ $(LIB_OBJ) $(LDLIBS)

build/libstateio.so.$(SOMAJOR): $(SHLIB)
	ln -sf libstateio.so.$(VERSION) $@

build/libstateio.so: build/libstateio.so.$(SOMAJOR)
	ln -sf libstateio.so.$(SOMAJOR) $@

# The pkg-config file, for PREFIX (rebuilt when PREFIX changes).
build/prefix.id: FORCE | build
	@echo '$(PREFIX)' >$@.new; if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

build/stateio.pc: pkg/stateio.pc.in src/stateio.h build/prefix.id
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' pkg/stateio.pc.in >$@

# ---------------------------------------------------------------- extension
# One shared object with the library compiled in; it exports its entry
# point only (pkg/stateio_ext.map).
stateio.so: $(EXT_SRC) $(EXT_HDR) $(LIB_SRC) $(LIB_HDR) pkg/stateio_ext.map build/cc.id | $(PKG_STEP)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -Iext -fPIC -shared \
	  -Wl,--version-script=pkg/stateio_ext.map -o $@ $(EXT_SRC) $(LIB_SRC) $(LDLIBS)

# The same with ASan+UBSan, for the sanitized run of the Tcl tests; the
# runtime to preload with it is written beside it (test/run-all.sh reads it).
build/san/stateio.so: $(EXT_SRC) $(EXT_HDR) $(LIB_SRC) $(LIB_HDR) build/cc.id | build/san $(PKG_STEP)
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -Iext -fPIC -shared -o $@ $(EXT_SRC) $(LIB_SRC) $(LDLIBS)
	echo '$(SAN_RT)' >build/san/sanitizer-runtime

# ---------------------------------------------------------------- the tool
build/cli/%.o: cli/%.c $(CLI_HDR) $(PUB_HDR) build/cc.id | build/cli $(PKG_STEP)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -c -o $@ $<

build/san/cli/%.o: cli/%.c $(CLI_HDR) $(PUB_HDR) build/cc.id | build/san/cli $(PKG_STEP)
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -c -o $@ $<

build/stateio: $(CLI_OBJ) build/libstateio.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) build/libstateio.a $(LDLIBS) -lpthread

build/san/stateio: $(CLI_OBJ_SAN) build/san/libstateio.a
	$(CC) -O1 -g $(SANFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ_SAN) build/san/libstateio.a $(LDLIBS) -lpthread

# ---------------------------------------------------------------- tests
# commit_test runs code inside the library's look for the commit file, a stat(),
# and between a reader's reads of the commit record, pread()s (--wrap).
TEST_LDFLAGS =
build/commit_test build/san/commit_test: TEST_LDFLAGS = -Wl,--wrap=stat -Wl,--wrap=pread

# ext_fault_test has the extension compiled in (SQLITE_CORE: its calls go to
# libsqlite3 itself), so that the library's os hook reaches its tables' files.
build/ext_fault_test: test/ext_fault_test.c test/testhelp.h test/sweep.h $(EXT_SRC) $(EXT_HDR) build/libstateio.a | build $(PKG_STEP)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -Iext -Itest -DSQLITE_CORE -o $@ $< $(EXT_SRC) build/libstateio.a $(LDLIBS) -lsqlite3 -lpthread

build/san/ext_fault_test: test/ext_fault_test.c test/testhelp.h test/sweep.h $(EXT_SRC) $(EXT_HDR) build/san/libstateio.a | build/san $(PKG_STEP)
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -Iext -Itest -DSQLITE_CORE -o $@ $< $(EXT_SRC) build/san/libstateio.a $(LDLIBS) -lsqlite3 -lpthread

build/%_test: test/%_test.c test/testhelp.h test/layout.h test/sweep.h build/libstateio.a | build $(PKG_STEP)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -Itest -o $@ $< build/libstateio.a $(LDLIBS) -lcrypto $(TEST_LDFLAGS)

build/san/%_test: test/%_test.c test/testhelp.h test/layout.h test/sweep.h build/san/libstateio.a | build/san $(PKG_STEP)
	$(CC) -O1 -g $(SANFLAGS) $(WARN) $(CPPFLAGS) -Itest -o $@ $< build/san/libstateio.a $(LDLIBS) -lcrypto $(TEST_LDFLAGS)

.PHONY: test
test: deps all $(CTESTS) $(CTESTS_SAN) build/san/stateio.so build/san/stateio
	@STATEIO_SAN_RUNTIME='$(SAN_RT)' CC='$(CC)' sh test/run-all.sh

# ---------------------------------------------------------------- demo
.PHONY: demo
demo: deps-demo stateio.so build/stateio
	@sh test/demo.sh

# ---------------------------------------------------------------- install
.PHONY: install uninstall
install: all
	install -d '$(DESTDIR)$(libdir)' '$(DESTDIR)$(includedir)' '$(DESTDIR)$(pkgconfigdir)' \
	  '$(DESTDIR)$(sqlite3dir)' '$(DESTDIR)$(bindir)' '$(DESTDIR)$(mandir)/man1'
	install -m 644 build/libstateio.a '$(DESTDIR)$(libdir)/libstateio.a'
	install -m 755 $(SHLIB) '$(DESTDIR)$(libdir)/libstateio.so.$(VERSION)'
	ln -sf libstateio.so.$(VERSION) '$(DESTDIR)$(libdir)/libstateio.so.$(SOMAJOR)'
	ln -sf libstateio.so.$(SOMAJOR) '$(DESTDIR)$(libdir)/libstateio.so'
	install -m 644 $(PUB_HDR) '$(DESTDIR)$(includedir)/'
	install -m 644 build/stateio.pc '$(DESTDIR)$(pkgconfigdir)/stateio.pc'
	install -m 755 stateio.so '$(DESTDIR)$(sqlite3dir)/stateio.so'
	install -m 755 build/stateio '$(DESTDIR)$(bindir)/stateio'
	install -m 644 doc/stateio.1 '$(DESTDIR)$(mandir)/man1/stateio.1'
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

uninstall:
	rm -f '$(DESTDIR)$(libdir)/libstateio.a' '$(DESTDIR)$(libdir)/libstateio.so' \
	  '$(DESTDIR)$(libdir)/libstateio.so.$(SOMAJOR)' '$(DESTDIR)$(libdir)/libstateio.so.$(VERSION)' \
	  $(patsubst src/%,'$(DESTDIR)$(includedir)/%',$(PUB_HDR)) \
	  '$(DESTDIR)$(pkgconfigdir)/stateio.pc' '$(DESTDIR)$(sqlite3dir)/stateio.so' \
	  '$(DESTDIR)$(bindir)/stateio' '$(DESTDIR)$(mandir)/man1/stateio.1'
	-rmdir '$(DESTDIR)$(sqlite3dir)' 2>/dev/null
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

clean:
	rm -rf build stateio.so

.PHONY: all clean FORCE
FORCE:

# ---------------------------------------------------------------- fuzzing, valgrind
# fuzz/fuzz_stateio.c is a libFuzzer target (clang only). test/fuzz-short.sh
# builds it, replays test/fuzz-regress/ and fuzzes for a fixed time; make
# test runs it for 20 s (from test/run-all.sh), make fuzz for FUZZ_SECONDS.
# make valgrind runs every build/*_test under valgrind with smaller sizes.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
# Edge coverage guides it; comparison tracing (trace-cmp) is left out: it
# costs two thirds of the time in the byte-by-byte scans of resync.c and
# record.c (363 -> about 1,000 inputs a second), and the structured inputs
# do not need it to find the format's magic values.
FUZZFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -fno-sanitize-coverage=trace-cmp

build/fuzz_stateio: fuzz/fuzz_stateio.c test/layout.h $(LIB_SRC) $(LIB_HDR) | build $(PKG_STEP)
	$(FUZZ_CC) $(FUZZFLAGS) $(WARN) $(CPPFLAGS) -o $@ fuzz/fuzz_stateio.c $(LIB_SRC) $(LDLIBS)

.PHONY: fuzz valgrind
fuzz: build/fuzz_stateio
	@sh test/fuzz-short.sh $(FUZZ_SECONDS)

valgrind: $(CTESTS)
	@sh test/valgrind.sh

# ---------------------------------------------------------------- bench
# bench/bench.c measures every figure next to its peer and prints a table
# (never part of make test), below the machine it ran on. BENCH_ARGS go to
# it: --quick for a ~25 s smoke run, --reps N, --dir DIR, --only 1,5, ...
# (build/bench --help). The default run takes 2-3 minutes.
BENCH_ARGS ?=

build/bench: bench/bench.c build/libstateio.a $(LIB_HDR) | build $(PKG_STEP)
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -DBENCH_CFLAGS='"$(CFLAGS)"' -o $@ bench/bench.c build/libstateio.a $(LDLIBS) -lsqlite3 -lm -lpthread

.PHONY: bench
bench: all build/bench
	./build/bench $(BENCH_ARGS)
