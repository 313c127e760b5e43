-- Spreads requests over the benchmark's tenants, each with its own API key:
-- KEYS names a file of "slug key" lines. Each thread walks the list from
-- its own offset, so together they touch every key. PATH_ is the path
-- requested; HOSTED=0 sends every request to the same host (the upstream
-- directly, or nginx, which do not route by tenant).
local keys, slugs = {}, {}
local path = os.getenv("PATH_") or "/api/"
local hosted = os.getenv("HOSTED") ~= "0"
for line in io.lines(os.getenv("KEYS")) do
  local slug, key = line:match("^(%S+)%s+(%S+)$")
  if slug then
    slugs[#slugs + 1] = slug
    keys[#keys + 1] = key
  end
end

local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local n = nil
request = function()
  if n == nil then
    n = (id or 0) * 7919
  end
  n = n + 1
  local i = (n % #keys) + 1
  local headers = { ["Authorization"] = "Bearer " .. keys[i] }
  if hosted then
    headers["Host"] = slugs[i] .. ".localhost"
  end
  return wrk.format("GET", path, headers)
end
