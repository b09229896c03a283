-- wrk script: POST the file named by BENCH_BODY with Content-Type BENCH_TYPE
-- (and Accept BENCH_ACCEPT when set).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_TYPE")
local accept = os.getenv("BENCH_ACCEPT")
if accept and accept ~= "" then
	wrk.headers["Accept"] = accept
end
