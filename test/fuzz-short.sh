#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz-short.sh - the libFuzzer target (fuzz/fuzz_stateio.c) for a fixed time.
#
#   sh test/fuzz-short.sh [SECONDS]     (default: FUZZ_SECONDS, else 20)
#
# First replays every input in test/fuzz-regress/ (inputs that once broke an
# invariant), then fuzzes for SECONDS from the seeds of fuzz/make-seeds.py
# (small structured inputs: operations that build a log, then mutations),
# raw-mode seeds made from some of them (the logs they build), and the
# corpus kept in build/fuzz-corpus-ops/. Inputs are at most 8192 bytes
# (-max_len; a structured input of a few hundred bytes builds logs of up to
# three blocks). Ends with a line "N passed, N failed": one for the replay,
# one for the run (which must execute inputs and find nothing).
# Without clang's libFuzzer runtime this fails; it never passes silently.
# `make test` runs it with 20 seconds, `make fuzz` with FUZZ_SECONDS (60).
# With STATEIO_FUZZ_COUNT=1 in the environment a broken invariant of the
# oracle does not stop the run: each kind is counted, the counts are printed,
# and the run fails if any is not 0 (see fuzz/fuzz_stateio.c).
set -u
cd "$(dirname "$0")/.." || exit 1
secs=${1:-${FUZZ_SECONDS:-20}}
bin=build/fuzz_stateio
pass=0
fail=0
mkdir -p build

if ! make -s "$bin" >build/fuzz-build.log 2>&1; then
  cat build/fuzz-build.log
  echo "fuzz: FAILED to build $bin (needs clang with -fsanitize=fuzzer: clang-14 + libclang-rt-14-dev)"
  echo "0 passed, 1 failed"
  exit 1
fi

# 1. Replay the regression inputs.
n=$(ls test/fuzz-regress 2>/dev/null | grep -v '^README' | wc -l)
if [ "$n" -gt 0 ]; then
  ./"$bin" $(ls -d test/fuzz-regress/* | grep -v '/README') >build/fuzz-regress.log 2>&1
  rrc=$?
  rcounts=$(grep '^fuzz-count:' build/fuzz-regress.log | tail -1)
  if [ -n "$rcounts" ]; then
    echo "$rcounts"
    rbroken=$(echo "${rcounts#*structured):}" | awk '{for (i = 2; i <= NF; i += 2) s += $i} END {print s + 0}')
    [ "$rbroken" -eq 0 ] || rrc=1
  fi
  if [ "$rrc" -eq 0 ]; then
    echo "fuzz: replayed $n regression inputs from test/fuzz-regress: ok"
    pass=$((pass + 1))
  else
    grep -E '^Running:|invariant failed|ERROR: AddressSanitizer|runtime error|SUMMARY' build/fuzz-regress.log | tail -4
    echo "fuzz: FAILED replaying test/fuzz-regress (log: build/fuzz-regress.log)"
    fail=$((fail + 1))
  fi
else
  echo "fuzz: no regression inputs in test/fuzz-regress"
fi

# 2. Seeds: the structured ones, and raw ones made from the small logs they build.
rm -rf build/fuzz-seed
mkdir -p build/fuzz-corpus-ops build/fuzz-seed
if ! python3 fuzz/make-seeds.py build/fuzz-seed; then
  echo "fuzz: FAILED to make the seeds (fuzz/make-seeds.py)"
  fail=$((fail + 1))
fi
for s in build/fuzz-seed/s-*; do
  [ -f "$s" ] || continue
  raw="build/fuzz-seed/r-${s##*/s-}"
  STATEIO_FUZZ_COUNT=1 STATEIO_FUZZ_WRITE_LOG="$raw.log" ./"$bin" "$s" >/dev/null 2>&1
  if [ -f "$raw.log" ] && [ "$(wc -c <"$raw.log")" -le 8000 ]; then
    { printf '\003'; cat "$raw.log"; } >"$raw"
  fi
  rm -f "$raw.log"
done
nseed=$(ls build/fuzz-seed | wc -l)

# 3. Fuzz.
rm -f build/fuzz-crash-* build/fuzz-short.log
./"$bin" -max_total_time="$secs" -print_final_stats=1 -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix=build/fuzz-crash- \
  build/fuzz-corpus-ops build/fuzz-seed >build/fuzz-short.log 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz-short.log | tail -1)
execs=${execs:-0}
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' build/fuzz-short.log | tail -1)
rate=${rate:-0}
crash=$(ls build/fuzz-crash-* 2>/dev/null | head -1)
counts=$(grep '^fuzz-count:' build/fuzz-short.log | tail -1)
broken=0
if [ -n "$counts" ]; then
  echo "$counts"
  broken=$(echo "${counts#*structured):}" | awk '{for (i = 2; i <= NF; i += 2) s += $i} END {print s + 0}')
fi
if [ "$rc" -eq 0 ] && [ "$execs" -gt 0 ] && [ -z "$crash" ] && [ "$broken" -eq 0 ]; then
  echo "fuzz: $execs executions in ${secs} s ($rate a second) from $nseed seeds, no invariant broken"
  pass=$((pass + 1))
else
  grep -E 'invariant failed|ERROR|SUMMARY' build/fuzz-short.log | head -10
  echo "fuzz: FAILED after $execs executions ($rate a second; exit $rc; log: build/fuzz-short.log)"
  if [ -n "$crash" ]; then
    echo "fuzz: the input is $crash; STATEIO_FUZZ_TRACE=1 $bin $crash shows the log it builds;"
    echo "      keep it as a regression test:"
    echo "      cp $crash test/fuzz-regress/\$(date +%Y%m%d)-SHORT-NAME"
  fi
  fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
