"""Phones at scale on the sandbox engine: memory per idle connected phone, time to resume
every phone after a restart, and how fast the supervisor brings a crashed session back.

Usage: python3 bench/phones.py BINARY [PHONES=1000] [CRASHES=200]
"""
import concurrent.futures
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from client import Client, login, percentile, rss_kib  # noqa: E402

binary = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
crashes = int(sys.argv[3]) if len(sys.argv) > 3 else 200
password = "benchmark password"
data_dir = tempfile.mkdtemp(prefix="wagate-bench-phones-")
port = 20000 + os.getpid() % 20000
base = f"http://127.0.0.1:{port}"
env = dict(os.environ, WAGATE_ENGINE="sandbox", WAGATE_LIMITS__MAX_PHONES=str(count + 10), RUST_LOG="warn")


def start():
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while True:
        try:
            if Client(base).get("/api/v1/health")[0] == 200:
                return proc, started
        except OSError:
            pass
        time.sleep(0.01)


def numbers():
    # +1 201-555-01xx and friends: valid NANP numbers in the fictional 555-01xx range
    # do not go far enough, so use 201-2xx-xxxx blocks that libphonenumber accepts.
    return [f"+1201{200 + i // 10000:03d}{i % 10000:04d}" for i in range(count)]


def connected(client):
    return client.get("/api/v1/health/resources")[1]["phones"]["connected"]


def wait_connected(client, n, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if connected(client) >= n:
            return True
        time.sleep(0.02)
    return False


proc, _ = start()
token = login(base, password)
client = Client(base, token)
time.sleep(1)
rss_before = rss_kib(proc.pid)
phones = numbers()


def setup(phone):
    c = Client(base, token)
    status, body = c.post("/api/v1/user/phones", {"phone": phone})
    assert status == 201, body
    status, body = c.post(f"/api/v1/user/phones/{phone}/connect")
    assert status == 200, body
    status, body = c.post(f"/api/v1/sandbox/phones/{phone}/scan")
    assert status == 200, body


t0 = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(setup, phones))
assert wait_connected(client, count), "not all phones connected"
setup_secs = time.monotonic() - t0
time.sleep(2)
rss_after = rss_kib(proc.pid)
per_phone = (rss_after - rss_before) * 1024 / count

proc.send_signal(signal.SIGTERM)
proc.wait(timeout=60)
proc, started = start()
client = Client(base, token)
assert wait_connected(client, count), "phones did not resume"
resume_secs = time.monotonic() - started

latencies = []
for phone in phones[:crashes]:
    c = Client(base, token)
    t = time.monotonic()
    status, body = c.post(f"/api/v1/sandbox/phones/{phone}/faults", {"kind": "crash"})
    assert status == 200, body
    # Until the supervisor sees the failure the phone still says connected; wait for the
    # restart to be under way, then for the connection.
    while c.get(f"/api/v1/user/phones/{phone}")[1]["status"] == "connected":
        if time.monotonic() - t > 5:
            break
        time.sleep(0.002)
    while c.get(f"/api/v1/user/phones/{phone}")[1]["status"] != "connected":
        time.sleep(0.002)
    latencies.append(time.monotonic() - t)

proc.send_signal(signal.SIGTERM)
proc.wait(timeout=60)

print(f"phones: {count}; setup (add+connect+scan, 8 clients): {setup_secs:.1f} s")
print(f"RSS: {rss_before / 1024:.1f} MiB with no phones, {rss_after / 1024:.1f} MiB with {count} connected; "
      f"{per_phone / 1024:.1f} KiB per phone (target < 100 KB)")
print(f"resume after restart: {resume_secs:.2f} s from process start to all {count} connected (target < 10 s)")
print(f"crash -> connected again, {len(latencies)} crashes: p50 {percentile(latencies, 50) * 1000:.0f} ms, "
      f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms (target p99 < 1 s; "
      f"includes the restart backoff of phones.restart_backoff_min = 250 ms ±25 %)")
