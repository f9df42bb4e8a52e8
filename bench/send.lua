-- wrk script: POST text messages, round-robin over the phones in $PHONES (comma-separated,
-- URL-encoded), authenticated with $TOKEN.
local token = os.getenv("TOKEN")
local phones = {}
for phone in string.gmatch(os.getenv("PHONES"), "[^,]+") do
  table.insert(phones, phone)
end
local i = 0
request = function()
  i = i + 1
  local phone = phones[(i % #phones) + 1]
  local body = '{"recipient":"12015550150","message":"benchmark message ' .. i .. '"}'
  return wrk.format("POST", "/api/v1/user/phones/" .. phone .. "/message",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
