-- luacheck configuration (Debian: lua-check).
std = "max"
max_line_length = 80
files["tests/spec"] = {std = "+busted"}
files["bench"] = {globals = {"jit"}}
globals = {"jit", "newproxy", "setfenv", "unpack"}
