"""A tiny JSON client for the benchmark scripts (standard library only)."""
import http.client
import json
import urllib.parse


class Client:
    def __init__(self, base, token=None):
        url = urllib.parse.urlparse(base)
        self.host, self.port = url.hostname, url.port
        self.token = token
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            headers = {"Content-Type": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            try:
                self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, (json.loads(data) if data else None)
            except (ConnectionError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    raise

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None):
        return self.request("POST", path, body if body is not None else {})


def login(base, password):
    c = Client(base)
    c.post("/api/v1/auth/change-password", {"newPassword": password})
    status, body = c.post("/api/v1/auth/login", {"password": password})
    assert status == 200, body
    return body["token"]


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def rss_kib(pid):
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
