"""The real engine at scale, against wa-emulator on loopback: memory per linked idle phone
and the time to resume every linked phone after a restart, beside the sandbox engine
measured the same way in the same run (the baseline).

Usage: python3 bench/emulator.py WAGATE_BINARY EMULATOR_BINARY [PHONES=200]
(WAGATE_BINARY must be built with `--features emulator`; bench/emulator.sh builds both.)
"""
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from client import Client, login, rss_kib  # noqa: E402

binary, emulator_binary = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 200
password = "benchmark password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(base, path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Client(base).get(path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{base}{path} did not answer")


def settled_rss(pid, seconds=5):
    """The median of a few samples once background work (prekey uploads, app state) is done."""
    time.sleep(seconds)
    samples = []
    for _ in range(5):
        samples.append(rss_kib(pid))
        time.sleep(0.4)
    return sorted(samples)[len(samples) // 2]


def numbers():
    return [f"+1201{300 + i // 10000:03d}{i % 10000:04d}" for i in range(count)]


def digits(phone):
    return phone.lstrip("+")


class Gateway:
    def __init__(self, engine, extra_env):
        self.dir = tempfile.mkdtemp(prefix=f"wagate-bench-{engine}-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, WAGATE_ENGINE=engine, WAGATE_LIMITS__MAX_PHONES=str(count + 10),
                        WAGATE_PHONES__CONNECT_WAIT="20s", RUST_LOG="warn", **extra_env)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.dir],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        wait_http(self.base, "/api/v1/health")
        return started

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)

    def connected(self, client):
        return client.get("/api/v1/health/resources")[1]["phones"]["connected"]

    def wait_connected(self, client, n, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected(client) >= n:
                return time.monotonic()
            time.sleep(0.05)
        raise SystemExit(f"only {self.connected(client)} of {n} phones connected after {timeout} s")


def link_sandbox(gateway, token, phone):
    c = Client(gateway.base, token)
    c.post("/api/v1/user/phones", {"phone": phone})
    c.post(f"/api/v1/user/phones/{phone}/connect")
    status, body = c.post(f"/api/v1/sandbox/phones/{phone}/scan")
    assert status == 200, body


def link_emulated(gateway, token, emulator, phone):
    c = Client(gateway.base, token)
    c.post("/api/v1/user/phones", {"phone": phone})
    status, view = c.post(f"/api/v1/user/phones/{phone}/connect")
    deadline = time.monotonic() + 60
    while not (view or {}).get("qr") and time.monotonic() < deadline:
        time.sleep(0.1)
        view = c.get(f"/api/v1/user/phones/{phone}")[1]
    status, body = Client(emulator).post(f"/control/accounts/{digits(phone)}/link", {"qr": view["qr"]["code"]})
    assert status == 200, body


def measure(name, gateway, link):
    gateway.start()
    token = login(gateway.base, password)
    client = Client(gateway.base, token)
    idle = settled_rss(gateway.proc.pid, 2)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda p: link(gateway, token, p), numbers()))
    gateway.wait_connected(client, count)
    linked_in = time.monotonic() - t0
    full = settled_rss(gateway.proc.pid)
    per_phone = (full - idle) / count
    gateway.stop()
    started = gateway.start()
    client = Client(gateway.base, login_again(gateway.base))
    done = gateway.wait_connected(client, count)
    resume = done - started
    after = settled_rss(gateway.proc.pid)
    gateway.stop()
    print(f"{name}: {count} phones linked in {linked_in:.1f} s; RSS idle {idle / 1024:.1f} MiB, "
          f"{count} connected {full / 1024:.1f} MiB -> {per_phone:.0f} KiB per phone; "
          f"restart -> all {count} connected in {resume:.2f} s (RSS {after / 1024:.1f} MiB)", flush=True)
    return per_phone, resume


def login_again(base):
    status, body = Client(base).post("/api/v1/auth/login", {"password": password})
    assert status == 200, body
    return body["token"]


def start_emulator(path):
    """The emulator binary on a free port, answering: (process, control URL, port)."""
    port = free_port()
    control = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([path, "serve", "--listen", f"127.0.0.1:{port}"],
                               env=dict(os.environ, RUST_LOG="warn"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_http(control, "/control/health")
    return process, control, port


def main():
    emu, emulator, emu_port = start_emulator(emulator_binary)
    try:
        for phone in numbers():
            status, body = Client(emulator).post("/control/accounts", {"phone": digits(phone), "name": "Bench"})
            assert status == 201, body
        print(f"machine: {os.cpu_count()} cores; {count} phones", flush=True)
        measure("sandbox (baseline)", Gateway("sandbox", {}), link_sandbox)
        ws = f"ws://127.0.0.1:{emu_port}/ws/chat"
        measure("whatsapp via wa-emulator", Gateway("whatsapp", {"WAGATE_WHATSAPP__SERVER_URL": ws}),
                lambda g, t, p: link_emulated(g, t, emulator, p))
        health = Client(emulator).get("/control/health")[1]
        print(f"emulator: {health}", flush=True)
    finally:
        emu.terminate()
        emu.wait()


if __name__ == "__main__":
    main()
