-- GET with optional Authorization / Cookie from the environment (BENCH_AUTH, BENCH_COOKIE).
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
local auth = os.getenv("BENCH_AUTH")
local cookie = os.getenv("BENCH_COOKIE")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
if cookie and cookie ~= "" then wrk.headers["Cookie"] = cookie end
