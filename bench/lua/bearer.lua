-- An authenticated request: GET (or BENCH_METHOD) with the bearer token from BENCH_TOKEN.
-- An optional JSON body comes from BENCH_BODY.
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body
end
