"""Real clusterpin daemons on 127.0.0.1 for the process-level tests.

A LocalCluster makes N config folders with one shared secret and free ports, starts
`clusterpin daemon` processes, and talks to their REST APIs over HTTP. Every wait is bounded.
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


_handed_out = set()


def free_port():
    """A free loopback port, never one handed out before in this process: the kernel may offer
    a port again once its probe socket closed, before the daemon it was meant for listens, and
    two daemons would then race for it."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class Daemon:
    def __init__(self, cluster, index, folder, api_port, p2p_port):
        self.cluster = cluster
        self.index = index
        self.folder = folder
        self.api_port = api_port
        self.p2p_port = p2p_port
        self.proc = None
        self.log_path = os.path.join(folder, "daemon.log")
        cfg = json.load(open(os.path.join(folder, "service.json")))
        self.id = cfg["cluster"]["id"]

    @property
    def host(self):
        return f"/ip4/127.0.0.1/tcp/{self.api_port}"

    @property
    def address(self):
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{self.id}"

    def start(self, *extra, env=None):
        """`env`: variables added to the daemon's environment (e.g. CLUSTERPIN_FAULT)."""
        # wait_ready looks only at what this run logs, after the earlier runs' lines.
        self.log_offset = len(self.log())
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.cluster.ctx.binary, "daemon", "--config", self.folder, *extra],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env} if env else None)
        return self

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "is READY" in self.log()[getattr(self, "log_offset", 0):]:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon {self.index} exited {self.proc.returncode}:\n{self.log()[-2000:]}")
            time.sleep(0.1)
        raise AssertionError(f"daemon {self.index} not ready after {timeout}s:\n{self.log()[-2000:]}")

    def log(self):
        try:
            return open(self.log_path).read()
        except FileNotFoundError:
            return ""

    def rss_mb(self):
        """Resident memory of the running daemon (VmRSS), in MB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError(f"daemon {self.index}: no VmRSS in /proc")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"daemon {self.index} did not stop on SIGTERM")
        return self.proc.returncode if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def api(self, method, path, timeout=30, body=None):
        """Returns (status, body text); `body` (bytes) is sent as the request body."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", method=method, data=body)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def pin_cids(self):
        status, body = self.api("GET", "/allocations")
        if status == 204:
            return set()
        assert status == 200, (status, body)
        return {json.loads(line)["cid"] for line in body.splitlines() if line.strip()}

    def cli(self, *args, stdin=None, timeout=60):
        return self.cluster.ctx.run(*args, "--host", self.host, stdin=stdin, timeout=timeout)


class LocalCluster:
    def __init__(self, ctx, n, secret=None, peers=True, name="peer"):
        self.ctx = ctx
        self.secret = secret or os.urandom(32).hex()
        self.daemons = []
        for i in range(n):
            self.add_config(f"{name}{i}")
        if peers:
            for d in self.daemons:
                self.set_peers(d, [o.address for o in self.daemons if o is not d])

    def add_config(self, name, **overrides):
        folder = self.ctx.folder(name)
        api, p2p = free_port(), free_port()
        r = self.ctx.run("init", "--config", folder, "--secret", self.secret, "--peername", name,
                         "--listen", f"/ip4/127.0.0.1/tcp/{p2p}", "--api", f"/ip4/127.0.0.1/tcp/{api}")
        assert r.returncode == 0, r.stderr
        path = os.path.join(folder, "service.json")
        cfg = json.load(open(path))
        raft = cfg["consensus"]["raft"]
        raft["heartbeat_timeout"] = "200ms"
        raft["election_timeout"] = "600ms"
        raft["wait_for_leader_timeout"] = "20s"
        raft["network_timeout"] = "5s"
        raft["commit_retries"] = 3
        for key, value in overrides.items():
            section, k = key.split("__")
            cfg.setdefault(section, {})[k] = value
        json.dump(cfg, open(path, "w"), indent=2)
        d = Daemon(self, len(self.daemons), folder, api, p2p)
        self.daemons.append(d)
        return d

    def set_peers(self, daemon, peers):
        path = os.path.join(daemon.folder, "service.json")
        cfg = json.load(open(path))
        cfg["cluster"]["peers"] = peers
        json.dump(cfg, open(path, "w"), indent=2)

    def edit(self, daemon, fn):
        path = os.path.join(daemon.folder, "service.json")
        cfg = json.load(open(path))
        fn(cfg)
        json.dump(cfg, open(path, "w"), indent=2)

    def start_all(self):
        for d in self.daemons:
            d.start()
        for d in self.daemons:
            d.wait_ready()
        return self

    def stop_all(self):
        for d in self.daemons:
            try:
                d.stop()
            except AssertionError:
                pass

    def leader(self, timeout=30):
        """The running daemon that the live peers name as Raft leader (waits for one)."""
        def find():
            for d in self.daemons:
                if d.running():
                    status, body = d.api("GET", "/id")
                    if status == 200 and json.loads(body).get("raft_leader"):
                        return json.loads(body)["raft_leader"]
            return None
        leader = wait_until(find, timeout, "a leader")
        return next(d for d in self.daemons if d.id == leader)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for d in self.daemons:
            d.kill()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")


def make_cids(n, seed=0):
    """n distinct valid CIDv1 (raw, sha2-256) strings, computed locally."""
    import base64
    import hashlib
    out = []
    for i in range(n):
        digest = hashlib.sha256(f"clusterpin-{seed}-{i}".encode()).digest()
        raw = bytes([0x01, 0x55, 0x12, 0x20]) + digest
        out.append("b" + base64.b32encode(raw).decode().lower().rstrip("="))
    return out
