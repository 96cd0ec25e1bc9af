"""A real IPFS daemon for the process tests: js-ipfs from the npm lock file, started by
scripts/ipfs-node on free loopback ports, and the few Kubo RPC calls the tests use to check
what IPFS really has (always asked directly, never through clusterpin)."""
import http.server
import json
import os
import subprocess
import threading
import urllib.parse
import urllib.error
import urllib.request
import uuid

from cluster import free_port
from harness import expect


def require_ipfs(source_root):
    cli = os.path.join(source_root, "node_modules", "ipfs", "src", "cli.js")
    expect(os.path.exists(cli), "node_modules/ipfs is missing: run `npm ci` at the repository root "
                                "(scripts/test does)")


def start_nodes(ctx, n, connect=True, announce=None):
    """n running IPFS daemons (all stopped again if one fails), connected to each other unless
    connect is False, each announcing the multiaddrs `announce` (a list) if given. The caller
    stops them."""
    require_ipfs(ctx.source_root)
    nodes = [Ipfs(ctx.source_root, ctx.folder(f"ipfs{i}"), announce) for i in range(n)]
    try:
        for node in nodes:
            node.start()
        for i, a in enumerate(nodes):
            for b in nodes[i + 1:] if connect else []:
                a.connect(b)
    except Exception:
        for node in nodes:
            node.stop()
        raise
    return nodes


class Ipfs:
    """One js-ipfs daemon in its own folder."""

    def __init__(self, source_root, folder, announce=None):
        self.dir = folder
        self.announce = announce
        self.api_port, self.swarm_port = free_port(), free_port()
        self.script = os.path.join(source_root, "scripts", "ipfs-node")
        self.running = False

    def start(self):
        env = dict(os.environ, IPFS_NODE_ANNOUNCE=json.dumps(self.announce or []))
        r = subprocess.run([self.script, "start", self.dir, str(self.api_port), str(self.swarm_port)],
                           capture_output=True, text=True, timeout=120, env=env)
        expect(r.returncode == 0, f"IPFS daemon did not start: {r.stderr}")
        self.running = True
        return self

    def stop(self):
        if self.running:
            subprocess.run([self.script, "stop", self.dir], capture_output=True, timeout=60)
            self.running = False

    @property
    def maddr(self):
        return f"/ip4/127.0.0.1/tcp/{self.api_port}"

    def call(self, path, data=None, headers=None, timeout=60):
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}/api/v0/{path}", data=data or b"",
                                     method="POST", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def add(self, content, query="pin=false"):
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + \
            f"\r\n--{boundary}--\r\n".encode()
        status, text = self.call(f"add?{query}", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        expect(status == 200, text)
        return json.loads(text)["Hash"]

    def add_folder(self, files):
        """Adds files ({"sub/f.txt": bytes}) under one folder "d" without pinning; returns
        {name: cid} for every file and folder IPFS reports ("d", "d/sub", "d/sub/f.txt")."""
        boundary = uuid.uuid4().hex
        body = b""
        for name, content in files.items():
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"d%2F{name.replace('/', '%2F')}\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        status, text = self.call("add?pin=false", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        expect(status == 200, text)
        return {entry["Name"]: entry["Hash"] for entry in map(json.loads, text.splitlines())}

    def pin_type(self, cid):
        """The pin type IPFS reports for cid ("recursive", "direct", "indirect..."), or None."""
        status, text = self.call(f"pin/ls?arg={cid}")
        if status != 200:
            expect("not pinned" in text, f"pin/ls?arg={cid}: {status} {text}")
            return None
        keys = json.loads(text)["Keys"]
        expect(len(keys) == 1, text)
        return next(iter(keys.values()))["Type"]

    def pinned(self, cid):
        status, text = self.call(f"pin/ls?arg={cid}&type=recursive")
        return status == 200 and cid in text

    def peer_address(self):
        status, text = self.call("id")
        expect(status == 200, text)
        return next(a for a in json.loads(text)["Addresses"] if "/127.0.0.1/" in a)

    def connect(self, other):
        status, text = self.call(f"swarm/connect?arg={other.peer_address()}")
        expect(status == 200, f"swarm/connect: {text}")


class RecordingProxy:
    """An HTTP proxy on a free loopback port in front of an IPFS daemon's API: forwards every call
    unchanged and records it as (command, {key: [values]}) when it arrives, so a test can see what
    a peer asked of IPFS. Use as a context manager; point node_multiaddress at proxy.maddr. For
    tests only: an answer is passed on whole once IPFS gave all of it, as JSON with a
    Content-Length (no stream, no trailers), and a client that gives up does not cancel the call
    to IPFS (its thread waits up to 600 s)."""

    def __init__(self, ipfs):
        self.target = ipfs.api_port
        self.calls = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                with proxy.lock:
                    proxy.calls.append((url.path.removeprefix("/api/v0/"), urllib.parse.parse_qs(url.query)))
                req = urllib.request.Request(f"http://127.0.0.1:{proxy.target}{self.path}", data=body,
                                             method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        status, answer = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, answer = e.code, e.read()
                except OSError as e:
                    status, answer = 502, json.dumps({"Message": str(e), "Code": 0}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def maddr(self):
        return f"/ip4/127.0.0.1/tcp/{self.port}"

    def recorded(self, command):
        with self.lock:
            return [query for c, query in self.calls if c == command]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
