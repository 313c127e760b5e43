-- Spreads requests over the benchmark's tenants: each request asks for the
-- landing page of the next tenant's host.
local tenants = tonumber(os.getenv("TENANTS") or "1000")
local n = 0
request = function()
  n = n + 1
  local host = string.format("bench-%04d.localhost", n % tenants)
  return wrk.format("GET", "/", { ["Host"] = host })
end
