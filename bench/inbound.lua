-- wrk script: virtual accounts send messages to the gateway phones in $PHONES (sandbox
-- inbound), round-robin, authenticated with $TOKEN.
local token = os.getenv("TOKEN")
local phones = {}
for phone in string.gmatch(os.getenv("PHONES"), "[^,]+") do
  table.insert(phones, phone)
end
local i = 0
request = function()
  i = i + 1
  local phone = phones[(i % #phones) + 1]
  local body = '{"from":"+12015550150","message":"inbound ' .. i .. '"}'
  return wrk.format("POST", "/api/v1/sandbox/phones/" .. phone .. "/inbound",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
