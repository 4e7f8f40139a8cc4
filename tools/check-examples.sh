#!/bin/sh
# check-examples.sh: runs the examples with both interpreters and the C
# embedding host; each run checks its output. Prints "examples: N passed,
# N failed".
cd "$(dirname "$0")/.."
pass=0
fail=0
expect() { # expect NAME PATTERN COMMAND...: runs COMMAND, greps its output
  name=$1; pattern=$2; shift 2
  if out=$("$@" 2>&1) && printf '%s\n' "$out" | grep -q -- "$pattern"; then
    pass=$((pass + 1))
  else
    printf '%s\n' "$out"
    echo "FAIL: $name (expected output matching '$pattern')"
    fail=$((fail + 1))
  fi
}
make -s examples && make -s examples LUA=luajit || fail=$((fail + 1))
expect "hello (Lua 5.4)" "hello from another thread	15.0	4 items" \
  build/lask examples/hello.lua
expect "hello (LuaJIT)" "hello from another thread	15	4 items" \
  build/luajit/lask examples/hello.lua
expect "delayed (Lua 5.4)" "pi is about 3.14" build/lask examples/delayed.lua
expect "delayed (LuaJIT)" "pi is about 3.14" build/luajit/lask \
  examples/delayed.lua
expect "wordcount (Lua 5.4)" "1. the        37" build/lask \
  examples/wordcount.lua 1
expect "wordcount (LuaJIT)" "1. the        37" build/luajit/lask \
  examples/wordcount.lua 1
expect "arrays (Lua 5.4)" "sum of (x + x^T) / 2: 8004000000 (expected 8004000000)" build/lask \
  examples/arrays.lua 2000
expect "arrays (LuaJIT)" "(x @ 1)\[n\]: 6001000 (expected 6001000)" \
  build/luajit/lask examples/arrays.lua 2000
EMBED_OUT="host.hypot came back as itself: true"
expect "embed host (Lua 5.4)" "$EMBED_OUT" build/embed_host \
  examples/embed/script.lua
expect "embed host (LuaJIT)" "$EMBED_OUT" build/luajit/embed_host \
  examples/embed/script.lua
echo "examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
