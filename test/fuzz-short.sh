#!/bin/sh
# fuzz-short.sh - the libFuzzer target (fuzz/fuzz_stateio.c) for a fixed time.
#
#   sh test/fuzz-short.sh [SECONDS]     (default: FUZZ_SECONDS, else 20)
#
# First replays every input in test/fuzz-regress/ (inputs that once broke an
# invariant), then fuzzes for SECONDS from the golden logs
# (GOLDEN_DIR, default test/golden) plus the corpus kept in
# build/fuzz-corpus/. Ends with a line "N passed, N failed": one for the
# replay, one for the run (which must execute inputs and find nothing).
# Without clang's libFuzzer runtime this fails; it never passes silently.
# `make test` runs it with 20 seconds, `make fuzz` with FUZZ_SECONDS (60).
set -u
cd "$(dirname "$0")/.." || exit 1
secs=${1:-${FUZZ_SECONDS:-20}}
golden=${GOLDEN_DIR:-test/golden}
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
  if ./"$bin" $(ls -d test/fuzz-regress/* | grep -v '/README') >build/fuzz-regress.log 2>&1; then
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

# 2. Fuzz from the golden logs and the kept corpus.
mkdir -p build/fuzz-corpus build/fuzz-seed
found=0
for d in "$golden"/*/; do
  if [ -f "$d/log.bin" ]; then
    cp "$d/log.bin" "build/fuzz-seed/$(basename "$d")"
    found=$((found + 1))
  fi
done
[ "$found" -gt 0 ] || echo "fuzz: no golden logs under $golden (seeding from the kept corpus only)"
rm -f build/fuzz-crash-* build/fuzz-short.log
./"$bin" -max_total_time="$secs" -print_final_stats=1 -max_len=66000 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix=build/fuzz-crash- \
  build/fuzz-corpus build/fuzz-seed >build/fuzz-short.log 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz-short.log | tail -1)
execs=${execs:-0}
crash=$(ls build/fuzz-crash-* 2>/dev/null | head -1)
if [ "$rc" -eq 0 ] && [ "$execs" -gt 0 ] && [ -z "$crash" ]; then
  echo "fuzz: $execs executions in ${secs} s from $found golden logs, no invariant broken"
  pass=$((pass + 1))
else
  grep -E 'invariant failed|ERROR|SUMMARY' build/fuzz-short.log | head -10
  echo "fuzz: FAILED after $execs executions (exit $rc; log: build/fuzz-short.log)"
  if [ -n "$crash" ]; then
    echo "fuzz: the input is $crash; keep it as a regression test:"
    echo "      cp $crash test/fuzz-regress/\$(date +%Y%m%d)-SHORT-NAME"
  fi
  fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
