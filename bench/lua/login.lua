-- POST /api/v1/auth/login, taking turns among BENCH_LOGIN_COUNT users named
-- BENCH_LOGIN_PREFIX followed by six digits (000000, 000001, ...), all with BENCH_PASSWORD.
-- Every login succeeds, so no throttling counter ever grows.
local prefix = os.getenv("BENCH_LOGIN_PREFIX")
local count = tonumber(os.getenv("BENCH_LOGIN_COUNT"))
local password = os.getenv("BENCH_PASSWORD")
local turn = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local login = string.format("%s%06d", prefix, turn % count)
  turn = turn + 1
  local body = string.format('{"login":"%s","password":"%s"}', login, password)
  return wrk.format(nil, nil, nil, body)
end
