#!/usr/bin/env bash
# test-all.sh: every suite CI runs, then one closing line "N passed,
# N failed" summing them. A suite that fails without reporting counts, or
# reports no test at all, counts as one failure. Logs go to build/test-logs.
set -u
cd "$(dirname "$0")/.."
LOGS=build/test-logs
mkdir -p "$LOGS"
FUZZ_TIME=${FUZZ_TIME:-60}
total_pass=0
total_fail=0
summary=""

# run NAME COMMAND...: runs a suite, tees its log, adds up its counts.
run() {
  local name=$1
  shift
  echo "=== $name: $*"
  # A pipeline, not a process substitution: bash waits for tee to finish
  # writing the log before the counts are read from it (with >(tee) the
  # last lines could still be on their way, and a suite that passed was
  # once counted as having run no test).
  "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]}
  local pass fail
  pass=$(grep -aoE '^([a-z]+: )?[0-9]+ passed, [0-9]+ failed' "$LOGS/$name.log" |
    grep -oE '[0-9]+ passed' | awk '{s += $1} END {print s + 0}')
  fail=$(grep -aoE '^([a-z]+: )?[0-9]+ passed, [0-9]+ failed' "$LOGS/$name.log" |
    grep -oE '[0-9]+ failed' | awk '{s += $1} END {print s + 0}')
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  if [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then
    echo "=== $name ran no test"
    fail=1
  fi
  echo "=== $name: $pass passed, $fail failed (exit $rc)"
  summary="$summary$(printf '%-9s %5d passed, %3d failed (exit %d)' "$name" "$pass" "$fail" "$rc")
"
  if [ "$fail" -ne 0 ]; then failed_logs="${failed_logs:-} $name"; fi
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
}

run layers tools/check-layers.sh
run c make test-c
run lua54 make test-lua LUA=lua5.4
run luajit make test-lua LUA=luajit
run asan make asan
# gcc 12's TSan runtime sometimes fails to map its own memory on this
# kernel ("ThreadSanitizer failed to allocate"), a failure of the tool, not
# a finding: such a run is repeated once. A race report is never retried.
tsan_once() {
  make tsan > "$LOGS/tsan-try.log" 2>&1 && { cat "$LOGS/tsan-try.log"; return 0; }
  if grep -q "ThreadSanitizer failed to allocate" "$LOGS/tsan-try.log" &&
     ! grep -q "WARNING: ThreadSanitizer" "$LOGS/tsan-try.log"; then
    echo "=== tsan: the TSan runtime failed to map memory; running once more"
    make tsan
    return $?
  fi
  cat "$LOGS/tsan-try.log"
  return 1
}
run tsan tsan_once
run fuzz tools/fuzz-check.sh "$FUZZ_TIME"
run rock tools/check-rock.sh
run examples tools/check-examples.sh

# CI shows only the end of what this prints: each failed suite's failures
# and the table of suites come last, just before the closing line.
for name in ${failed_logs:-}; do
  echo "=== what failed in $name (from $LOGS/$name.log):"
  grep -aE -B2 -A12 '(FAIL|Failure|Error|ERROR|failed|Sanitizer|Assertion|Segmentation|Aborted)' \
    "$LOGS/$name.log" | grep -avE '^(#|=== )' | tail -60
  echo "--- last lines of $name:"
  tail -15 "$LOGS/$name.log"
done
echo "=== suites"
printf '%s' "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
