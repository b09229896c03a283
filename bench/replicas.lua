-- wrk script for bench/replicas: POST the file BENCH_BODY (JSON) and spread
-- wrk's threads over the daemons whose loopback ports are in BENCH_PORTS
-- ("8081,8082,8083"): thread i talks to port i mod n.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local ports = {}
for p in string.gmatch(os.getenv("BENCH_PORTS"), "%d+") do
	ports[#ports + 1] = p
end
local next_thread = 0

function setup(thread)
	local port = ports[(next_thread % #ports) + 1]
	next_thread = next_thread + 1
	thread.addr = wrk.lookup("127.0.0.1", port)[1]
end
