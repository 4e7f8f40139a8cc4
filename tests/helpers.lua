-- helpers.lua: small functions the specs share.
local helpers = {}

--- Calls f(...), which must raise; returns the error as a string.
function helpers.errmsg(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

return helpers
