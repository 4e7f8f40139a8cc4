#!/bin/sh
# fuzz-check.sh SECONDS: runs the decoder's fuzz target; one test, passed
# when libFuzzer finds no crash, leak or sanitizer report in that time.
# libFuzzer's progress lines go to build/fuzz-run.log; only the end of it
# is shown, or all of a failing run's report.
cd "$(dirname "$0")/.."
mkdir -p build
if make fuzz FUZZ_TIME="${1:-60}" > build/fuzz-run.log 2>&1; then
  grep -aE '^(Done|stat::)' build/fuzz-run.log
  echo "fuzz: 1 passed, 0 failed"
else
  grep -avE '^#[0-9]+' build/fuzz-run.log | tail -80
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi
