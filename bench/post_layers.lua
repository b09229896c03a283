-- wrk script: POST the file named by BENCH_BODY (Content-Type BENCH_TYPE) to
-- /v1/layers/<BENCH_PREFIX><i>/<BENCH_OP> for i = 1..BENCH_LAYERS, round robin.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = f:read("*a")
f:close()
local prefix = os.getenv("BENCH_PREFIX")
local op = os.getenv("BENCH_OP")
local layers = tonumber(os.getenv("BENCH_LAYERS"))
local headers = { ["Content-Type"] = os.getenv("BENCH_TYPE") }
local i = 0

request = function()
	i = i % layers + 1
	return wrk.format("POST", "/v1/layers/" .. prefix .. i .. "/" .. op, headers, body)
end
