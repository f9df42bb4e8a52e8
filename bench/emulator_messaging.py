"""Messaging on the real engine against wa-emulator, beside the sandbox engine in the same
run (the baseline):

- send -> recipient decrypted: the gateway sends at a steady 50 messages/s (`POST …/message`)
  to a person; the latency of each is from just before its request to the moment the
  person's phone had decrypted it (the emulator's phone records that instant; the sandbox
  records when its virtual account got it). Same clock: everything runs on this machine.
- inbound stored per second: the person sends N messages as fast as 8 clients can ask
  (the emulator's phone encrypts each one to the gateway's device; the sandbox injects
  them), timed until the gateway's history holds all N.

Usage: python3 bench/emulator_messaging.py WAGATE_BINARY EMULATOR_BINARY [SECONDS=20] [INBOUND=1000]
(WAGATE_BINARY must be built with `--features emulator`; bench/emulator_messaging.sh builds both.)
"""
import concurrent.futures
import datetime
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from client import Client, login, percentile  # noqa: E402
from emulator import Gateway, start_emulator  # noqa: E402  (the phone bench's helpers)

binary, emulator_binary = sys.argv[1], sys.argv[2]
seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
inbound_total = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
rate = 50
password = "benchmark password"
phone, person = "+12015550123", "+5511987654321"
quoted = phone.replace("+", "%2B")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def steady_sends(gateway, token):
    """Sends at `rate`/s for `seconds`; returns {id: wall-clock time just before the request}."""
    started, total = time.time(), rate * seconds
    sent, lock, failures = {}, threading.Lock(), []

    def worker(k):
        c = Client(gateway.base, token)
        for i in range(k, total, 4):
            due = started + i / rate
            time.sleep(max(0.0, due - time.time()))
            t0 = time.time()
            status, body = c.post(f"/api/v1/user/phones/{quoted}/message",
                                  {"recipient": person, "message": f"benchmark message {i}"})
            if status != 200:
                failures.append((status, body))
                continue
            with lock:
                sent[body["id"]] = t0

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    elapsed = time.time() - started
    if failures:
        print(f"  {len(failures)} sends failed, first: {failures[0]}", flush=True)
    return sent, elapsed


def latencies(sent, arrived):
    got = [arrived[i] - t0 for i, t0 in sent.items() if i in arrived]
    return [1000 * x for x in got]


def wait_for(check, what, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def stored_count(gateway, token):
    return Client(gateway.base, token).get(f"/api/v1/user/phones/{quoted}/messages?limit=1")[1]["pagination"]["total"]


def inbound_burst(gateway, token, send_one):
    before = stored_count(gateway, token)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(send_one, range(inbound_total)))
    asked = time.monotonic() - started
    wait_for(lambda: True if stored_count(gateway, token) >= before + inbound_total else None, "inbound stored")
    return inbound_total / (time.monotonic() - started), asked


def report(name, sent, elapsed, arrived, inbound_rate, asked):
    lat = latencies(sent, arrived)
    print(f"{name}: {len(sent)} sends at {len(sent) / elapsed:.1f}/s, {len(lat)} decrypted by the recipient; "
          f"send -> recipient p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms; "
          f"inbound: {inbound_total} stored at {inbound_rate:.0f}/s (the person's {inbound_total} sends took {asked:.1f} s)",
          flush=True)


def sandbox_run():
    gateway = Gateway("sandbox", {"WAGATE_MESSAGING__PACING": "off"})
    gateway.start()
    token = login(gateway.base, password)
    c = Client(gateway.base, token)
    c.post("/api/v1/sandbox/accounts", {"phone": person, "name": "Bia"})
    c.post("/api/v1/user/phones", {"phone": phone})
    c.post(f"/api/v1/user/phones/{quoted}/connect")
    c.post(f"/api/v1/sandbox/phones/{quoted}/scan")
    wait_for(lambda: True if c.get(f"/api/v1/user/phones/{quoted}")[1]["status"] == "connected" else None, "connected")
    sent, elapsed = steady_sends(gateway, token)
    account = person.replace("+", "%2B")
    received = wait_for(lambda: (lambda d: d if len(d) >= len(sent) else None)(
        c.get(f"/api/v1/sandbox/accounts/{account}/messages")[1]["data"]), "sandbox deliveries")
    arrived = {m["id"]: parse_time(m["receivedAt"]) for m in received}
    local = threading.local()

    def inject(i):
        if not hasattr(local, "c"):
            local.c = Client(gateway.base, token)
        status, body = local.c.post(f"/api/v1/sandbox/phones/{quoted}/inbound", {"from": person, "message": f"in {i}"})
        assert status == 200, body

    inbound_rate, asked = inbound_burst(gateway, token, inject)
    gateway.stop()
    report("sandbox (baseline)", sent, elapsed, arrived, inbound_rate, asked)


def emulator_run():
    emu, control, emu_port = start_emulator(emulator_binary)
    try:
        for number, name in [(phone, "Alice"), (person, "Bia")]:
            status, body = Client(control).post("/control/accounts", {"phone": number.lstrip("+"), "name": name})
            assert status == 201, body
        gateway = Gateway("whatsapp", {"WAGATE_MESSAGING__PACING": "off",
                                       "WAGATE_WHATSAPP__SERVER_URL": f"ws://127.0.0.1:{emu_port}/ws/chat"})
        gateway.start()
        token = login(gateway.base, password)
        c = Client(gateway.base, token)
        c.post("/api/v1/user/phones", {"phone": phone})
        c.post(f"/api/v1/user/phones/{quoted}/connect")
        qr = wait_for(lambda: (c.get(f"/api/v1/user/phones/{quoted}")[1].get("qr") or {}).get("code"), "a QR code")
        status, body = Client(control).post(f"/control/accounts/{phone.lstrip('+')}/link", {"qr": qr})
        assert status == 200, body
        wait_for(lambda: True if c.get(f"/api/v1/user/phones/{quoted}")[1]["status"] == "connected" else None, "connected")
        # One message first, so the Signal session exists before the clock runs.
        c.post(f"/api/v1/user/phones/{quoted}/message", {"recipient": person, "message": "warm-up"})
        sent, elapsed = steady_sends(gateway, token)
        inbox = f"/control/accounts/{person.lstrip('+')}/messages"
        received = wait_for(lambda: (lambda d: d if len([m for m in d if m["id"] in sent]) >= len(sent) else None)(
            Client(control).get(inbox)[1]["data"]), "decrypted by the recipient")
        arrived = {m["id"]: parse_time(m["at"]) for m in received}
        local = threading.local()

        def person_sends(i):
            if not hasattr(local, "c"):
                local.c = Client(control)
            status, body = local.c.post(f"/control/accounts/{person.lstrip('+')}/messages",
                                        {"to": phone.lstrip("+"), "text": f"in {i}"})
            assert status == 201, body

        inbound_rate, asked = inbound_burst(gateway, token, person_sends)
        gateway.stop()
        report("whatsapp via wa-emulator", sent, elapsed, arrived, inbound_rate, asked)
    finally:
        emu.terminate()
        emu.wait()


print(f"machine: {os.cpu_count()} cores; {rate} sends/s for {seconds} s, {inbound_total} inbound", flush=True)
sandbox_run()
emulator_run()
