#!/bin/sh
# fuzz-check.sh SECONDS: runs the decoder's fuzz target; one test, passed
# when libFuzzer finds no crash, leak or sanitizer report in that time.
cd "$(dirname "$0")/.."
if make fuzz FUZZ_TIME="${1:-60}"; then
  echo "fuzz: 1 passed, 0 failed"
else
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi
