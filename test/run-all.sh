#!/bin/sh
# SPDX-License-Identifier: MIT
# run-all.sh - run every test and add up the results (`make test` runs it).
#
#   sh test/run-all.sh
#
# From the project root, in this order:
#   1. build/X_test for every test/X_test.c (golden_test and compact_test
#      get the golden directory as their argument: GOLDEN_DIR, default
#      test/golden);
#   2. build/san/X_test, the same tests built with ASan+UBSan, with
#      ASAN_OPTIONS=detect_leaks=1 and
#      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1;
#   3. tclsh test/X.test for every Tcl test, then again with the extension
#      and the tool built with ASan+UBSan (build/san/stateio.so, with the
#      sanitizer runtime of the compiler that built it preloaded, and
#      build/san/stateio);
#   4. test/fuzz-short.sh for 20 s (FUZZ_SHORT_SECONDS), when it exists:
#      the fuzz target on the regression inputs, then fuzzing.
# Each program's output is captured, then printed. Its last line of the form
# "N passed, N failed" is its count. A program that prints no such line
# (it crashed, or died before its report), exits with a non-zero status
# while reporting no failure (e.g. a leak found at exit), is missing, or
# runs longer than STATEIO_TEST_TIMEOUT seconds (default 900) counts as one
# failure, named. The last line is the totals, "N passed, N failed"; the
# exit status is 1 if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1

golden=${GOLDEN_DIR:-test/golden}
limit=${STATEIO_TEST_TIMEOUT:-900}
export GOLDEN_DIR="$golden"

total_pass=0
total_fail=0
failed=""
out=$(mktemp "${TMPDIR:-/tmp}/run-all.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT INT TERM

if command -v timeout >/dev/null 2>&1; then
  with_timeout="timeout -k 10 $limit"
else
  with_timeout=""
fi

# run NAME COMMAND...: run one program, print its output, add up its counts.
run() {
  name=$1
  shift
  echo "== $name"
  start=$(date +%s)
  $with_timeout "$@" >"$out" 2>&1 </dev/null
  rc=$?
  secs=$(( $(date +%s) - start ))
  cat "$out"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ -n "$summary" ]; then
    p=${summary%% passed*}
    f=${summary#*passed, }
    f=${f%% failed*}
  else
    p=0
    f=0
  fi
  why=""
  if [ "$rc" -eq 124 ] && [ -n "$with_timeout" ]; then
    why="timed out after $limit s"
  elif [ -z "$summary" ]; then
    if [ "$rc" -gt 128 ]; then
      why="killed by signal $((rc - 128)), no summary line"
    else
      why="no summary line (exit status $rc)"
    fi
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    why="exit status $rc after reporting no failure"
  fi
  if [ -n "$why" ]; then
    f=$((f + 1))
    echo "run-all: FAILED $name: $why"
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  if [ "$f" -gt 0 ]; then
    failed="$failed $name"
    echo "-- $name: $p passed, $f FAILED (${secs} s)"
  else
    echo "-- $name: $p passed (${secs} s)"
  fi
}

# A test program that should exist but does not: one failure.
missing() {
  echo "== $1"
  echo "run-all: FAILED $1: not built (run make)"
  total_fail=$((total_fail + 1))
  failed="$failed $1"
}

# 1 and 2: the C tests, plain then sanitized.
for dir in build build/san; do
  for src in test/*_test.c; do
    [ -f "$src" ] || continue
    t=$(basename "$src" .c)
    bin="$dir/$t"
    if [ ! -x "$bin" ]; then
      missing "$bin"
      continue
    fi
    set -- "./$bin"
    case $t in golden_test|compact_test) set -- "./$bin" "$golden";; esac
    if [ "$dir" = build/san ]; then
      run "$bin" env ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" "$@"
    else
      run "$bin" "$@"
    fi
  done
done

# 3: the Tcl tests.
for t in test/*.test; do
  [ -f "$t" ] || continue
  run "$t" tclsh "$t"
done

# 3b: the Tcl tests again with the extension built with ASan+UBSan
# (build/san/stateio.so), the sanitizer runtime preloaded into tclsh (and
# the processes the tests start), and the sanitized tool (build/san/stateio).
# The runtime must be the one of the compiler that built the extension:
# gcc's libasan.so, or clang's libclang_rt.asan-ARCH.so. make test passes
# it (STATEIO_SAN_RUNTIME); else the Makefile wrote it beside the extension
# (build/san/sanitizer-runtime); else it is asked of $CC (default cc),
# clang's name first (clang also finds gcc's libasan.so).
san_runtime() {
  arch=$(${CC:-cc} -dumpmachine 2>/dev/null | cut -d- -f1)
  for f in "libclang_rt.asan-$arch.so" libasan.so; do
    p=$(${CC:-cc} -print-file-name="$f" 2>/dev/null)
    case $p in /*) if [ -f "$p" ]; then echo "$p"; return; fi;; esac
  done
}
asan=${STATEIO_SAN_RUNTIME:-}
if [ -z "$asan" ] && [ -s build/san/sanitizer-runtime ]; then
  asan=$(cat build/san/sanitizer-runtime)
fi
[ -n "$asan" ] || asan=$(san_runtime)
if [ ! -f build/san/stateio.so ]; then
  missing build/san/stateio.so
elif [ ! -x build/san/stateio ]; then
  missing build/san/stateio
elif [ -z "$asan" ] || [ ! -f "$asan" ]; then
  missing "the sanitizer runtime of ${CC:-cc} (for build/san/stateio.so)"
else
  echo "== sanitized Tcl tests: LD_PRELOAD=$asan"
  for t in test/*.test; do
    [ -f "$t" ] || continue
    run "san:$t" env LD_PRELOAD="$asan" STATEIO_EXT=build/san/stateio \
      STATEIO_CLI=build/san/stateio \
      ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
      tclsh "$t"
  done
fi

# 4: a short fuzzing run (it builds its own target).
if [ -f test/fuzz-short.sh ]; then
  run test/fuzz-short.sh sh test/fuzz-short.sh "${FUZZ_SHORT_SECONDS:-20}"
fi

echo
if [ -n "$failed" ]; then
  echo "run-all: failed:$failed"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
