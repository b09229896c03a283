-- wrk script: POST the file named by BENCH_BODY with Content-Type BENCH_TYPE.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_TYPE")
