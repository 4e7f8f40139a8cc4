#!/bin/sh
# check-layers.sh: the layer rule of ARCHITECTURE.md as a test: runtime/
# includes no Lua header, and lua/ starts no threads and opens no sockets.
cd "$(dirname "$0")/.."
pass=0
fail=0
if grep -nE '#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib|luajit)\.h' \
    runtime/*.[ch]; then
  echo "FAIL: runtime/ includes a Lua header"; fail=$((fail + 1))
else
  pass=$((pass + 1))
fi
if grep -nE 'require *\(? *["'"'"'](socket|luv|uv)["'"'"']' lua/lask/*.lua; then
  echo "FAIL: a Lua module opens sockets itself"; fail=$((fail + 1))
else
  pass=$((pass + 1))
fi
echo "layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
