#!/bin/sh
# SPDX-License-Identifier: MIT
# valgrind.sh - run every normal-build C test (build/*_test) under valgrind.
#
#   sh test/valgrind.sh [BINARY...]      (make valgrind)
#
# Each binary runs under `valgrind --leak-check=full --error-exitcode=99`
# with smaller sizes (the STATEIO_* variables below) and counts as one
# test: passed when valgrind finds nothing in it. What counts:
#  - the test process itself: any error (invalid access, uninitialised
#    value, bad free, ...) and any leak, definite or possible;
#  - processes it forks: any error but leaks. Tests fork children that
#    simulate a crash by calling _exit() in the middle of the library's
#    work (compact_test), or are SIGKILLed (kill_test); what such a process
#    still holds is not a leak. Leak records are not counted as errors
#    (--errors-for-leak-kinds=none) so that valgrind does not change a
#    child's exit status to 99 behind the test's back; the test process's
#    own leaks are read from its log instead.
# The tests' own checks are judged by `make test`; one that fails them here
# is named but not counted again. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind: not installed (apt-get install valgrind)"
  echo "0 passed, 1 failed"
  exit 1
fi
# Smaller runs: valgrind is 20-50 times slower.
export STATEIO_TORN_STRIDE=${STATEIO_TORN_STRIDE:-1009}
export STATEIO_JOBS=${STATEIO_JOBS:-2}
export STATEIO_KILL_ITERS=${STATEIO_KILL_ITERS:-40}
export STATEIO_KILL_MAXLEN=${STATEIO_KILL_MAXLEN:-20000}
export STATEIO_SMALL=1
limit=${VALGRIND_TIMEOUT:-900}
bins="$*"
[ -n "$bins" ] || bins=$(ls build/*_test 2>/dev/null)
errpat='Invalid (read|write|free)|uninitialised|Syscall param|Mismatched free|overlap|Conditional jump|unaddressable|Argument .* of function'
pass=0
fail=0
mkdir -p build/valgrind
for b in $bins; do
  [ -x "$b" ] || continue
  name=$(basename "$b")
  out=build/valgrind/$name.out
  rm -f build/valgrind/"$name".vg.*
  start=$(date +%s)
  valgrind -q --leak-check=full --show-leak-kinds=definite,possible \
    --errors-for-leak-kinds=none --error-exitcode=99 \
    --log-file="build/valgrind/$name.vg.%p" "$b" >"$out" 2>&1 &
  vpid=$!                      # valgrind runs the test in this very process
  ( sleep "$limit"; kill -9 "$vpid" 2>/dev/null ) &
  watchdog=$!
  wait "$vpid"
  rc=$?
  kill "$watchdog" 2>/dev/null
  secs=$(( $(date +%s) - start ))
  main=build/valgrind/$name.vg.$vpid
  problems=""
  [ "$rc" -eq 99 ] && problems="$problems errors;"
  [ "$rc" -gt 128 ] && problems="$problems killed (signal $((rc - 128)), timeout ${limit} s?);"
  if [ -f "$main" ] && grep -qE 'are (definitely|possibly) lost' "$main"; then
    problems="$problems leaks;"
  fi
  children=0
  for f in build/valgrind/"$name".vg.*; do
    [ -f "$f" ] || continue
    [ "$f" = "$main" ] && continue
    if grep -qE "$errpat" "$f"; then
      children=$((children + 1))
    elif [ ! -s "$f" ]; then
      rm -f "$f"
    fi
  done
  [ "$children" -gt 0 ] && problems="$problems errors in $children forked process(es);"
  own=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  if [ -n "$problems" ]; then
    echo "valgrind: $name FAILED:$problems ${secs} s; see build/valgrind/$name.vg.*"
    grep -h -B2 -A12 -E "$errpat|are (definitely|possibly) lost" build/valgrind/"$name".vg.* 2>/dev/null | head -40
    fail=$((fail + 1))
  else
    note=""
    [ "$rc" -ne 0 ] && note=" (its own checks failed: ${own:-exit $rc}; see make test)"
    echo "valgrind: $name clean in ${secs} s$note"
    pass=$((pass + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
