"""Uses the Python client generated from openapi/openapi.json against a running server:
sets the first password, logs in, and reads /api/v1/health/resources."""

import sys
import time

from wagate_client import AuthenticatedClient, Client
from wagate_client.api.auth import change_password, login, verify_token
from wagate_client.api.health import health, health_resources
from wagate_client.api.phones import add_phone, connect_phone, get_phone
from wagate_client.api.sandbox import sandbox_scan
from wagate_client.models import AddPhoneRequest, ChangePasswordRequest, ConnectRequest, ErrorBody, LoginRequest

base_url = sys.argv[1]
password = "sdk smoke password"

client = Client(base_url=base_url, raise_on_unexpected_status=True)
status = health.sync(client=client)
assert status.status == "ok", status

refused = login.sync(client=client, body=LoginRequest(password=password))
assert isinstance(refused, ErrorBody) and refused.error.code == "password_not_set", refused

change_password.sync(client=client, body=ChangePasswordRequest(new_password=password))
session = login.sync(client=client, body=LoginRequest(password=password))
assert session.token_type == "Bearer", session

authed = AuthenticatedClient(base_url=base_url, token=session.token, raise_on_unexpected_status=True)
resources = health_resources.sync(client=authed)
assert resources.cpu.cores >= 1, resources
assert resources.memory.total_bytes > 0, resources
assert verify_token.sync(client=authed).data.valid is True

# The first client kept the session cookie from login, so it is authenticated too.
assert health_resources.sync(client=client).cpu.cores >= 1
anonymous = health_resources.sync(client=Client(base_url=base_url))
assert isinstance(anonymous, ErrorBody) and anonymous.error.code == "unauthorized", anonymous
added = add_phone.sync(client=authed, body=AddPhoneRequest(phone="+12015550101"))
assert added.phone == "+12015550101", added
pairing = connect_phone.sync(client=authed, phone="+12015550101", body=ConnectRequest())
assert pairing.status.value == "pairing" and pairing.qr.png_data_url.startswith("data:image/png"), pairing
sandbox_scan.sync(client=authed, phone="+12015550101")
for _ in range(200):
    view = get_phone.sync(client=authed, phone="+12015550101")
    if view.status.value == "connected":
        break
    time.sleep(0.02)
assert view.status.value == "connected", view
print(f"generated SDK ok: {resources.cpu.cores} cores, process RSS {resources.process.rss_bytes} bytes")
