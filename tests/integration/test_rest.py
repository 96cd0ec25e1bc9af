"""The REST API of a real `clusterpin daemon` on 127.0.0.1, checked from outside over HTTP: bad
input answered 400 naming what is wrong and what is accepted, the size and time limits (431, 413,
slowloris), basic auth, the refusal to listen beyond loopback without credentials, and IPFS path
pinning (/pins/{ipfs|ipns|ipld}/{path}) against a real IPFS daemon (js-ipfs from the npm lock
file). What IPFS has pinned is always asked of IPFS directly.
Usage: test_rest.py CLUSTERPIN SOURCE_ROOT [--only TEST]"""
import base64
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, free_port, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402
from http_stub import HttpStub  # noqa: E402
from ipfs import Ipfs, require_ipfs  # noqa: E402


def single_peer(ctx, edit=None, ipfs=None):
    """A started one-peer cluster; `edit(cfg)` changes its service.json first."""
    c = LocalCluster(ctx, 1, peers=False)
    d = c.daemons[0]
    if ipfs is not None:
        c.edit(d, lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(node_multiaddress=ipfs.maddr))
    if edit:
        c.edit(d, edit)
    d.start()
    d.wait_ready()
    return c, d


def error_message(body):
    doc = json.loads(body)
    expect(set(doc) == {"code", "message"}, f"not an API error object: {body}")
    return doc["message"]


def api(d, method, path, headers=None, data=None, timeout=30):
    req = urllib.request.Request(f"http://127.0.0.1:{d.api_port}{path}", method=method,
                                 headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw_exchange(d, data, timeout=30):
    """Sends raw bytes, then reads until the server closes; returns (bytes read, closed)."""
    s = socket.create_connection(("127.0.0.1", d.api_port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking everything
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return got, True
            except socket.timeout:
                return got, False
            if not chunk:
                return got, True
            got += chunk
        return got, False
    finally:
        s.close()


def status_line(raw):
    first = raw.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = first.split(" ")
    expect(len(parts) >= 2 and parts[0].startswith("HTTP/1."), f"not an HTTP answer: {raw[:200]!r}")
    return int(parts[1])


# --- bad input -----------------------------------------------------------------------------------

def test_a_bad_cid_is_answered_400_naming_it(ctx):
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        for method, path in [("POST", "/pins/not-a-cid"), ("DELETE", "/pins/not-a-cid"),
                             ("GET", "/pins/not-a-cid"), ("GET", "/allocations/not-a-cid"),
                             ("POST", "/pins/not-a-cid/recover"), ("GET", "/pins?cids=not-a-cid")]:
            status, body = d.api(method, path)
            expect(status == 400, f"{method} {path}: {status} {body}")
            expect("not-a-cid" in error_message(body), f"{method} {path}: the message does not name it: {body}")
        status, body = d.api("POST", "/pins/ipfs/not-a-cid")
        expect(status == 400 and "not-a-cid" in error_message(body), body)
        status, body = d.api("POST", "/pins/foo")  # looks like nothing: still named
        expect(status == 400 and "foo" in error_message(body), body)


def test_bad_query_values_are_answered_400_naming_the_parameter_and_what_is_accepted(ctx):
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        cid = make_cids(1, seed=40)[0]
        cases = [
            (f"/pins/{cid}?replication-min=abc", "POST", "replication-min", ["abc", "integer"]),
            (f"/pins/{cid}?replication=1x", "POST", "replication", ["1x", "integer"]),
            (f"/pins/{cid}?mode=xyz", "POST", "mode", ["xyz", "recursive", "direct"]),
            (f"/pins/{cid}?expire-in=bogus", "POST", "expire-in", ["bogus", "duration"]),
            (f"/pins/{cid}?expire-at=yesterday", "POST", "expire-at", ["yesterday"]),
            (f"/pins/{cid}?user-allocations=nobody", "POST", "user-allocations", ["nobody"]),
            ("/pins?filter=nonsense", "GET", "filter", ["nonsense", "pinned", "error"]),
            (f"/pins?cids={cid},nope", "GET", "cids", ["nope"]),
            ("/allocations?indent=9", "GET", "indent", ["9", "0 to 8"]),
            ("/allocations?indent=four", "GET", "indent", ["four", "0 to 8"]),
            ("/allocations?filter=bogus", "GET", "filter", ["bogus", "pin", "meta-pin", "shard-pin"]),
        ]
        for path, method, param, words in cases:
            status, body = d.api(method, path)
            expect(status == 400, f"{method} {path}: {status} {body}")
            message = error_message(body)
            expect(param in message, f"{method} {path}: the message does not name {param}: {message}")
            for word in words:
                expect(word.lower() in message.lower(), f"{method} {path}: the message lacks {word!r}: {message}")
        expect(d.pin_cids() == set(), "a refused request changed the pinset")


def cors_exchange(d, method, path, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{d.api_port}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


def test_cors_defaults_answer_every_origin_for_get(ctx):
    # Defaults (IPFS Cluster's): every origin, GET only, credentials allowed, no max age.
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        status, h = cors_exchange(d, "GET", "/id", {"Origin": "https://app.example"})
        expect(status == 200 and h["Access-Control-Allow-Origin"] == "*", str(dict(h)))
        expect("X-Stream-Output" in h["Access-Control-Expose-Headers"], str(dict(h)))
        expect(h["Access-Control-Allow-Credentials"] == "true" and "Origin" in h["Vary"], str(dict(h)))
        status, h = cors_exchange(d, "GET", "/id", {})
        expect(status == 200 and "Access-Control-Allow-Origin" not in h, "CORS headers without an Origin")
        status, h = cors_exchange(d, "OPTIONS", "/pins", {"Origin": "https://app.example",
                                                          "Access-Control-Request-Method": "GET"})
        expect(status == 204 and h["Access-Control-Allow-Origin"] == "*", f"{status} {dict(h)}")
        expect(h["Access-Control-Allow-Methods"] == "GET", str(dict(h)))
        # A method or a header not allowed: no Access-Control-Allow-* (the browser refuses).
        for asked in ({"Access-Control-Request-Method": "DELETE"},
                      {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Secret"}):
            status, h = cors_exchange(d, "OPTIONS", "/pins", {"Origin": "https://app.example", **asked})
            expect(status == 204 and "Access-Control-Allow-Origin" not in h, f"{asked}: {status} {dict(h)}")
        # POST is not allowed across origins here: a web page's cross-site POST (which a browser
        # sends without a preflight) is refused before it pins anything (IPFS Cluster executes
        # it). Programs send no Origin and are not concerned.
        cid = make_cids(1, seed=48)[0]
        status, h = cors_exchange(d, "POST", f"/pins/{cid}", {"Origin": "https://app.example"})
        expect(status == 403 and "Access-Control-Allow-Origin" not in h, f"{status} {dict(h)}")
        expect(d.api("GET", f"/allocations/{cid}")[0] == 404, "the refused POST pinned")
        status, body = d.api("POST", f"/pins/{cid}")
        expect(status == 200, body)


def test_cors_settings_restrict_origins_methods_and_headers_and_the_preflight_needs_no_credentials(ctx):
    def restricted(cfg):
        cfg["api"]["restapi"].update(cors_allowed_origins=["https://*.example.org"],
                                     cors_allowed_methods=["GET", "POST"], cors_allowed_headers=["Authorization"],
                                     cors_allow_credentials=False, cors_max_age="10m0s",
                                     basic_auth_credentials={"ana": "s3cret"})
    with single_peer(ctx, edit=restricted)[0] as c:
        d = c.daemons[0]
        # The preflight goes without credentials; the answer it allows does not.
        status, h = cors_exchange(d, "OPTIONS", "/pins", {"Origin": "https://ui.example.org",
                                                          "Access-Control-Request-Method": "post",
                                                          "Access-Control-Request-Headers": "authorization"})
        expect(status == 204 and h["Access-Control-Allow-Origin"] == "https://ui.example.org", f"{status} {dict(h)}")
        expect(h["Access-Control-Allow-Methods"] == "POST" and h["Access-Control-Allow-Headers"] == "authorization",
               str(dict(h)))
        expect(h["Access-Control-Max-Age"] == "600" and "Access-Control-Allow-Credentials" not in h, str(dict(h)))
        status, h = cors_exchange(d, "GET", "/id", {"Origin": "https://ui.example.org"})
        expect(status == 401 and h["Access-Control-Allow-Origin"] == "https://ui.example.org", f"{status} {dict(h)}")
        status, h = cors_exchange(d, "GET", "/id", {"Origin": "https://evil.example.com"})
        expect(status == 401 and "Access-Control-Allow-Origin" not in h, f"{status} {dict(h)}")
        # A POST from an allowed origin (POST allowed) goes on to the credentials check; from
        # another origin it is refused even with credentials.
        auth = {"Authorization": "Basic " + base64.b64encode(b"ana:s3cret").decode()}
        cid = make_cids(1, seed=49)[0]
        status, h = cors_exchange(d, "POST", f"/pins/{cid}", {"Origin": "https://ui.example.org", **auth})
        expect(status == 200 and h["Access-Control-Allow-Origin"] == "https://ui.example.org", f"{status} {dict(h)}")
        status, h = cors_exchange(d, "DELETE", f"/pins/{cid}", {"Origin": "https://ui.example.org", **auth})
        expect(status == 403, f"DELETE is not an allowed method: {status} {dict(h)}")
        status, h = cors_exchange(d, "POST", f"/pins/{cid}", {"Origin": "https://evil.example.com", **auth})
        expect(status == 403, f"{status} {dict(h)}")


def test_a_loopback_api_without_credentials_answers_only_requests_addressed_to_loopback_names(ctx):
    # DNS rebinding: a web page at attacker.example, its name made to resolve to 127.0.0.1, is
    # same-origin with the API to the browser, so CORS does not stop it; its requests carry
    # its own name as Host.
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        cid = make_cids(1, seed=52)[0]
        for method, path in (("GET", "/pins"), ("GET", "/id"), ("POST", f"/pins/{cid}")):
            status, h = cors_exchange(d, method, path, {"Host": f"attacker.example:{d.api_port}"})
            expect(status == 403, f"{method} {path} with a foreign Host: {status} {dict(h)}")
        raw, _ = raw_exchange(d, f"POST /pins/{cid} HTTP/1.1\r\nHost: attacker.example\r\n"
                                 "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        head, _, body = raw.partition(b"\r\n\r\n")
        expect(status_line(raw) == 403, raw[:300])
        message = json.loads(body)["message"]
        for word in ("attacker.example", "localhost", "basic_auth_credentials"):
            expect(word in message, f"the refusal does not name {word}: {message}")
        expect(d.api("GET", f"/allocations/{cid}")[0] == 404, "a refused POST pinned")
        for host in ("localhost", f"localhost:{d.api_port}", f"127.0.0.1:{d.api_port}", "api.localhost"):
            status, h = cors_exchange(d, "GET", "/id", {"Host": host})
            expect(status == 200, f"Host {host}: {status}")
        raw, _ = raw_exchange(d, b"GET /id HTTP/1.0\r\n\r\n")  # HTTP/1.0 may send no Host
        expect(status_line(raw) == 200, raw[:300])


def test_an_api_with_credentials_answers_any_host_name(ctx):
    # With credentials the page cannot act (its requests carry none), and a reverse proxy on
    # this host may forward its own name.
    def with_credentials(cfg):
        cfg["api"]["restapi"]["basic_auth_credentials"] = {"ana": "s3cret"}
    with single_peer(ctx, edit=with_credentials)[0] as c:
        d = c.daemons[0]
        auth = {"Authorization": "Basic " + base64.b64encode(b"ana:s3cret").decode()}
        status, _ = cors_exchange(d, "GET", "/id", {"Host": "cluster.example.org", **auth})
        expect(status == 200, f"{status}")
        status, _ = cors_exchange(d, "GET", "/id", {"Host": "cluster.example.org"})
        expect(status == 401, f"{status}")


def test_head_is_answered_as_get_without_a_body(ctx):
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        for path, status in (("/id", 200), ("/version", 200), ("/health", 204), ("/no-such-route", 404)):
            raw, _ = raw_exchange(d, f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            expect(status_line(raw) == status, f"HEAD {path}: {raw[:200]!r}")
            head, _, body = raw.partition(b"\r\n\r\n")
            expect(body == b"", f"HEAD {path} sent a body: {body[:100]!r}")
        status, body = d.api("POST", f"/pins/{make_cids(1, seed=51)[0]}")
        expect(status == 200, body)
        raw, _ = raw_exchange(d, b"HEAD /allocations HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        expect(status_line(raw) == 200 and raw.endswith(b"\r\n\r\n"), raw[:300])
        # A listing's HEAD ends at its head and the connection answers the next request.
        raw, _ = raw_exchange(d, b"HEAD /pins HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                 b"HEAD /allocations HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                 b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answers = raw.split(b"HTTP/1.1 ")
        expect([a[:3] for a in answers[1:]] == [b"200", b"200", b"200"], raw[:600])
        expect(b'"version"' in answers[3] and answers[1].endswith(b"\r\n\r\n")
               and answers[2].endswith(b"\r\n\r\n"), raw[:600])


def test_the_trailing_slash_redirect_keeps_escapes_in_the_path_and_injects_no_header(ctx):
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        raw, _ = raw_exchange(d, b"GET /pins%3Fx%0D%0AX-Evil:%201/?local=true HTTP/1.1\r\nHost: localhost\r\n"
                                 b"Connection: close\r\n\r\n")
        expect(status_line(raw) == 307, raw[:300])
        head = raw.split(b"\r\n\r\n", 1)[0].decode()
        expect(not any(line.lower().startswith("x-evil") for line in head.split("\r\n")), head)
        expect("\r\nLocation: /pins%3Fx%0D%0AX-Evil%3A%201?local=true\r\n" in head, head)


def test_an_encoded_slash_stays_inside_its_path_segment(ctx):
    # The tag "a/b" is published as the metric "tag:a/b": one path segment, sent as tag%3Aa%2Fb.
    def tagged(cfg):
        cfg["informer"]["tags"]["tags"] = {"a/b": "slashed"}
    with single_peer(ctx, edit=tagged)[0] as c:
        d = c.daemons[0]
        wait_until(lambda: "tag:a/b" in json.loads(d.api("GET", "/monitor/metrics")[1]), 30,
                   "the tag metric to be published")
        status, body = d.api("GET", "/monitor/metrics/tag%3Aa%2Fb")
        expect(status == 200, f"{status} {body}")
        got = json.loads(body)
        expect(len(got) == 1 and got[0]["name"] == "tag:a/b" and got[0]["value"] == "slashed", body)
        # A real slash still separates segments: that is another (unknown) route.
        status, body = d.api("GET", "/monitor/metrics/tag%3Aa/b")
        expect(status == 404 and "no route" in error_message(body), f"{status} {body}")
        # The trailing-slash redirect keeps the encoded slash inside the name.
        raw, _ = raw_exchange(d, b"GET /monitor/metrics/tag%3Aa%2Fb/ HTTP/1.1\r\nHost: localhost\r\n"
                                 b"Connection: close\r\n\r\n")
        expect(status_line(raw) == 307, raw[:300])
        expect(b"\r\nLocation: /monitor/metrics/tag%3Aa%2Fb\r\n" in raw, raw[:300])
        # The CLI sends the name encoded and prints the peer's value.
        r = d.cli("health", "metrics", "tag:a/b")
        expect(r.returncode == 0 and "tag:a/b: slashed" in r.stdout, r.stdout + r.stderr)
        # A malformed escape is still refused with 400 before routing.
        raw, _ = raw_exchange(d, b"GET /monitor/metrics/tag%3Aa%2 HTTP/1.1\r\nHost: localhost\r\n"
                                 b"Connection: close\r\n\r\n")
        expect(status_line(raw) == 400, raw[:300])


def test_allocations_filter_is_a_list_of_pin_types_as_ipfs_cluster_reads_it(ctx):
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        cids = make_cids(3, seed=43)
        for cid in cids:
            status, body = d.api("POST", f"/pins/{cid}")
            expect(status == 200, body)

        def listed(query):
            status, body = api(d, "GET", "/allocations" + query)
            expect(status in (200, 204), f"{query}: {status} {body}")
            return sorted(json.loads(line)["cid"] for line in body.splitlines() if line.strip())
        for query in ("", "?filter=", "?filter=all", "?filter=pin", "?filter=pin,bogus", "?filter=meta-pin,all"):
            expect(listed(query) == sorted(cids), f"{query}: {listed(query)}")
        # the sharding types hold none of this cluster's data pins (they once matched as "...pin")
        for query in ("?filter=meta-pin", "?filter=shard-pin,clusterdag-pin"):
            status, body = api(d, "GET", "/allocations" + query)
            expect(status == 204 and body == "", f"{query}: {status} {body[:200]}")
        # The CLI checks the names before asking (exit 1), as `status --filter` does.
        r = d.cli("pin", "ls", "--filter", "nonsense")
        expect(r.returncode == 1 and "nonsense" in r.stderr and "meta-pin" in r.stderr, r.stdout + r.stderr)


# --- listings as ipfs-cluster-ctl prints them ----------------------------------------------------

def go_indent(compact_lines, width=4):
    """NDJSON objects as Go's json.MarshalIndent (ipfs-cluster-ctl --enc json) prints them."""
    return "".join(json.dumps(json.loads(line), indent=width, ensure_ascii=False) + "\n"
                   for line in compact_lines)


def get_with_headers(d, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{d.api_port}{path}", timeout=30) as r:
        return r.status, r.headers, r.read().decode()


def test_pin_ls_enc_json_prints_what_the_peer_writes_indented_the_same_as_re_indenting(ctx):
    with single_peer(ctx)[0] as c:
        d = c.daemons[0]
        cids = make_cids(3, seed=41)
        queries = ["name=plain", "name=tab%09and%22quote%22&meta-owner=ana&meta-zone=%C3%A9u",
                   "mode=direct&expire-in=1h"]
        for cid, query in zip(cids, queries):
            status, body = d.api("POST", f"/pins/{cid}?{query}")
            expect(status == 200, f"{status} {body}")
        status, headers, compact = get_with_headers(d, "/allocations")
        lines = compact.splitlines()
        expect(status == 200 and len(lines) == 3, f"{status} {compact}")
        expect(headers.get("X-Clusterpin-Indent") is None, "a compact listing says it is indented")
        for width in (4, 2):
            status, headers, indented = get_with_headers(d, f"/allocations?indent={width}")
            expect(status == 200 and headers.get("X-Clusterpin-Indent") == str(width), f"{status} {headers}")
            expect(indented == go_indent(lines, width), f"indent={width}:\n{indented}")
        status, headers, again = get_with_headers(d, "/allocations?indent=0")
        expect(again == compact and headers.get("X-Clusterpin-Indent") is None, again)
        r = d.cli("pin", "ls", "--enc", "json")
        expect(r.returncode == 0, r.stderr)
        expect(r.stdout == go_indent(lines), f"pin ls --enc json printed:\n{r.stdout}")
        expect("\t" not in r.stdout and "tab\\tand\\\"quote\\\"" in r.stdout, r.stdout)


class _OldPeer(HttpStub):
    """An API that ignores ?indent (as IPFS Cluster does): compact NDJSON, or an error."""

    def __init__(self, body, status=200):
        self.body, self.status = body, status
        self.targets = []
        super().__init__(self._answer, backlog=4)

    def _answer(self, conn, method, target, body):
        self.targets.append(target)
        payload = self.body.encode()
        conn.sendall(f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)


def test_pin_ls_enc_json_re_indents_a_peer_that_ignores_indent_and_prints_its_errors(ctx):
    lines = ['{"cid":"bafyone","name":"a","allocations":[],"metadata":{"k":"v"},"n":1}',
             '{"cid":"bafytwo","name":"b","allocations":["p1","p2"],"metadata":{},"n":-2}']
    old = _OldPeer("\n".join(lines) + "\n")
    try:
        r = ctx.run("pin", "ls", "--enc", "json", "--host", f"/ip4/127.0.0.1/tcp/{old.port}")
        expect(r.returncode == 0, r.stderr)
        expect(r.stdout == go_indent(lines), f"printed:\n{r.stdout}")
        expect(old.targets and "indent=4" in old.targets[0], f"asked for {old.targets}")
    finally:
        old.close()
    failing = _OldPeer('{"code":500,"message":"the state is gone"}', status=500)
    try:
        r = ctx.run("pin", "ls", "--enc", "json", "--host", f"/ip4/127.0.0.1/tcp/{failing.port}")
        expect(r.returncode == 2, f"exit {r.returncode}: {r.stdout} {r.stderr}")
        # With --enc json the API's error object is printed as JSON on standard output, as
        # ipfs-cluster-ctl prints it.
        expect(json.loads(r.stdout) == {"code": 500, "message": "the state is gone"}, f"{r.stdout!r} {r.stderr!r}")
    finally:
        failing.close()


# --- limits --------------------------------------------------------------------------------------

def test_a_header_block_over_max_header_bytes_is_refused_and_the_connection_closed(ctx):
    limit = 2048
    c, d = single_peer(ctx, lambda cfg: cfg["api"]["restapi"].update(max_header_bytes=limit))
    with c:
        big = "".join(f"X-Filler-{i}: {'a' * 100}\r\n" for i in range(limit * 3 // 100))
        raw, closed = raw_exchange(d, f"GET /id HTTP/1.1\r\nHost: localhost\r\n{big}\r\n".encode())
        code = status_line(raw)
        expect(code in (431, 400), f"answered {code}: {raw[:300]!r}")
        expect(closed, "the connection stayed open after the refusal")
        # A header block within the limit is served.
        raw, _ = raw_exchange(d, b"GET /id HTTP/1.1\r\nHost: localhost\r\nX-Small: 1\r\nConnection: close\r\n\r\n")
        expect(status_line(raw) == 200, raw[:300])


def test_a_body_over_the_limit_is_answered_413(ctx):
    c, d = single_peer(ctx)
    with c:
        # Declared larger than the 64 MiB body limit: refused before the body is read.
        head = (f"POST /pins HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {(64 << 20) + 1}\r\n\r\n").encode()
        raw, closed = raw_exchange(d, head + b"a" * 1000)
        expect(status_line(raw) == 413, raw[:300])
        expect(closed, "the connection stayed open after 413")
        # Chunked, so the size is only known while reading: cut off once past the limit.
        chunk = b"b" * (1 << 20)
        framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        s = socket.create_connection(("127.0.0.1", d.api_port), timeout=30)
        try:
            s.sendall(b"POST /pins HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(70):
                    s.sendall(framed)
                s.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            got = b""
            while True:
                try:
                    part = s.recv(65536)
                except ConnectionResetError:
                    break
                if not part:
                    break
                got += part
        finally:
            s.close()
        expect(got and status_line(got) == 413, got[:300])
        expect(d.pin_cids() == set(), "a refused body changed the pinset")


def test_a_body_is_refused_at_the_head_on_routes_that_take_none(ctx):
    # Only POST /pins reads a body. Elsewhere one used to be read and held (up to 64 MiB of the
    # budget all requests share), on OPTIONS and GET /health by clients without credentials too.
    c, d = single_peer(ctx, lambda cfg: cfg["api"]["restapi"].update(
        basic_auth_credentials={"admin": "s3cret"}))
    with c:
        for method, path in (("GET", "/health"), ("OPTIONS", "/pins")):
            got, closed = raw_exchange(d, f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                                          f"Content-Length: 60000000\r\n\r\nabc".encode(), timeout=10)
            expect(closed and got.startswith(b"HTTP/1.1 413 "), f"{method} {path}: {got[:300]!r}")
            message = error_message(got.split(b"\r\n\r\n", 1)[1].decode())
            expect(f"{method} {path} takes no request body" in message and "POST /pins" in message, message)
        got, closed = raw_exchange(d, b"GET /health HTTP/1.1\r\nHost: localhost\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n", timeout=10)
        expect(closed and got.startswith(b"HTTP/1.1 413 "), got[:300])
        cid = make_cids(1, seed=97)[0]
        creds = auth_header("admin", "s3cret")
        status, body = api(d, "POST", f"/pins/{cid}", creds, data=b"something")
        expect(status == 413 and "takes no request body" in error_message(body), f"{status} {body}")
        # Content-Length: 0 (what Go's client sends with a POST without body) is no body.
        status, body = api(d, "POST", f"/pins/{cid}", creds, data=b"")
        expect(status == 200 and json.loads(body)["cid"] == cid, f"{status} {body}")
        status, body = api(d, "POST", "/pins", creds, data=(cid + "\n").encode())
        expect(status == 200 and json.loads(body)["count"] == 1, f"{status} {body}")


def test_a_list_of_more_cids_than_pin_add_sends_is_refused_whole(ctx):
    # Each CID of a list is prepared on the io thread that also runs Raft: a 64 MiB list (a
    # million CIDs) held it for seconds. `pin add -` sends 10,000 a request.
    c, d = single_peer(ctx)
    with c:
        cids = make_cids(10001, seed=98)
        status, body = api(d, "POST", "/pins", data=("\n".join(cids) + "\n").encode())
        message = error_message(body)
        expect(status == 413 and "line 10001" in message and "at most 10000 CIDs a request" in message,
               f"{status} {body}")
        expect(d.pin_cids() == set(), "a refused list changed the pinset")


def test_two_host_fields_and_bytes_that_are_not_utf8_get_clear_json_errors(ctx):
    c, d = single_peer(ctx)
    with c:
        got, _ = raw_exchange(d, b"GET /id HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n"
                                 b"Connection: close\r\n\r\n", timeout=10)
        expect(status_line(got) == 400, got[:300])
        expect("more than one Host" in error_message(got.split(b"\r\n\r\n", 1)[1].decode()), got[:300])
        # An escape that decodes to a byte that is not UTF-8, echoed in the error: the body must
        # still be JSON a strict decoder reads (Python's json refuses a raw 0xFF).
        got, _ = raw_exchange(d, b"GET /x%FF HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                              timeout=10)
        expect(status_line(got) == 404, got[:300])
        body = got.split(b"\r\n\r\n", 1)[1]
        message = error_message(body.decode("utf-8"))
        expect("/x\ufffd" in message, message)


def test_slowloris_clients_are_cut_off_while_others_are_served(ctx):
    c, d = single_peer(ctx, lambda cfg: cfg["api"]["restapi"].update(read_header_timeout="4s"))
    with c:
        request = b"GET /id HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
        outcome = {}
        lock = threading.Lock()
        state = {"open": 0, "connected": 0}

        def slow(i):
            s = socket.create_connection(("127.0.0.1", d.api_port), timeout=60)
            with lock:
                state["open"] += 1
                state["connected"] += 1
            s.settimeout(1.0)
            sent = 0
            try:
                for byte in request:
                    try:
                        s.sendall(bytes([byte]))
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    sent += 1
                    try:
                        data = s.recv(4096)  # waits about a second: one byte a second
                        if not data:
                            break
                        if data.startswith(b"HTTP/1.1 200"):
                            outcome[i] = ("served", sent)
                            return
                        if data.startswith(b"HTTP/1.1 408"):
                            while s.recv(4096):  # the answer, then the close
                                pass
                            break
                    except socket.timeout:
                        continue
                    except ConnectionResetError:
                        break
                outcome[i] = ("cut off", sent)
            finally:
                with lock:
                    state["open"] -= 1
                s.close()

        threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(20)]
        for t in threads:
            t.start()
        wait_until(lambda: state["connected"] == 20, 30, "the 20 slow clients to connect")
        # While the 20 slow clients are open, another client is answered.
        open_before = state["open"]
        status, body = d.api("GET", "/id", timeout=30)
        open_after = state["open"]
        expect(status == 200 and json.loads(body)["id"] == d.id, f"{status} {body}")
        expect(open_before == 20 and open_after == 20,
               f"the check did not overlap the slow clients ({open_before} open before, {open_after} after)")
        for t in threads:
            t.join(timeout=60)
        expect(not any(t.is_alive() for t in threads), "a slow client was never cut off")
        expect(len(outcome) == 20, str(outcome))
        for i, (what, sent) in outcome.items():
            expect(what == "cut off", f"slow client {i} was {what}")
            expect(sent < len(request), f"slow client {i} sent the whole request ({sent} bytes)")
        status, _ = d.api("GET", "/id")
        expect(status == 200, "the API stopped answering after the slow clients")


# --- basic auth ----------------------------------------------------------------------------------

def auth_header(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_ipfs_cluster_routes_clusterpin_does_not_serve_answer_501_with_what_to_use(ctx):
    c, d = single_peer(ctx)
    with c:
        for method, path, hint in (("POST", "/add", "ipfs add"), ("GET", "/health/bandwidth", "/health/graph"),
                                   ("POST", "/peers", "--bootstrap")):
            status, body = api(d, method, path, data=b"")
            expect(status == 501, f"{method} {path}: {status} {body}")
            error = json.loads(body)
            expect(error["code"] == 501 and "not implemented" in error["message"] and hint in error["message"],
                   f"{method} {path}: {body}")


def test_id_leaves_out_the_ipfs_peer_id_while_ipfs_is_unreachable(ctx):
    # IPFS Cluster writes ipfs.id with omitempty, and Go clients refuse an empty peer id: an
    # unknown one is left out, the error says why.
    port = free_port()
    c, d = single_peer(ctx, lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(
        node_multiaddress=f"/ip4/127.0.0.1/tcp/{port}"))
    with c:
        wait_until(lambda: json.loads(api(d, "GET", "/id")[1])["ipfs"]["error"], 30, "the IPFS error")
        info = json.loads(api(d, "GET", "/id")[1])
        expect("id" not in info["ipfs"], str(info["ipfs"]))


def test_post_token_issues_a_jwt_that_authenticates_as_bearer(ctx):
    c, d = single_peer(ctx, lambda cfg: cfg["api"]["restapi"].update(
        basic_auth_credentials={"admin": "s3cret", "bob": "builder"}))
    with c:
        status, body = api(d, "POST", "/token")
        expect(status == 401, f"a token without credentials: {status} {body}")
        status, body = api(d, "POST", "/token", auth_header("admin", "s3cret"))
        expect(status == 200, f"{status} {body}")
        token = json.loads(body)["token"]
        # An HS256 JWT whose issuer is the user, signed with that user's password (IPFS Cluster's).
        head, claims, signature = token.split(".")
        unb64 = lambda part: base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        expect(json.loads(unb64(head))["alg"] == "HS256" and json.loads(unb64(claims)) == {"iss": "admin"}, token)
        mac = hmac.new(b"s3cret", f"{head}.{claims}".encode(), hashlib.sha256).digest()
        expect(unb64(signature) == mac, "the signature is not HMAC-SHA256 keyed by the password")
        bearer = {"Authorization": "Bearer " + token}
        status, body = api(d, "GET", "/id", bearer)
        expect(status == 200 and json.loads(body)["id"] == d.id, f"{status} {body}")
        cid = make_cids(1, seed=42)[0]
        status, body = api(d, "POST", f"/pins/{cid}", bearer)
        expect(status == 200 and json.loads(body)["cid"] == cid, f"{status} {body}")
        # A token renews itself; a token signed with another password is refused, and says why.
        status, body = api(d, "POST", "/token", bearer)
        expect(status == 200 and json.loads(body)["token"] == token, f"{status} {body}")
        forged_claims = base64.urlsafe_b64encode(b'{"iss":"bob"}').rstrip(b"=").decode()
        forged = f"{head}.{forged_claims}.{signature}"
        status, h = cors_exchange(d, "GET", "/id", {"Authorization": "Bearer " + forged})
        expect(status == 401 and "invalid_token" in h.get("WWW-Authenticate", ""), f"{status} {dict(h)}")
    c2 = LocalCluster(ctx, 1, peers=False, name="open")
    d2 = c2.daemons[0].start()
    d2.wait_ready()
    with c2:
        status, body = api(d2, "POST", "/token")
        expect(status == 401 and "basic_auth_credentials" in body, f"no credentials configured: {status} {body}")


def test_basic_auth_guards_every_route_but_health(ctx):
    c, d = single_peer(ctx, lambda cfg: cfg["api"]["restapi"].update(
        basic_auth_credentials={"admin": "s3cret"}))
    with c:
        cid = make_cids(1, seed=41)[0]
        for method, path in [("GET", "/id"), ("GET", "/pins"), ("POST", f"/pins/{cid}"), ("GET", "/peers")]:
            status, body = api(d, method, path)
            expect(status == 401, f"{method} {path} without credentials: {status} {body}")
            status, body = api(d, method, path, auth_header("admin", "wrong"))
            expect(status == 401, f"{method} {path} with a wrong password: {status} {body}")
            status, body = api(d, method, path, auth_header("nobody", "s3cret"))
            expect(status == 401, f"{method} {path} with an unknown user: {status} {body}")
        status, body = api(d, "GET", "/id", auth_header("admin", "s3cret"))
        expect(status == 200 and json.loads(body)["id"] == d.id, f"{status} {body}")
        status, body = api(d, "POST", f"/pins/{cid}", auth_header("admin", "s3cret"))
        expect(status == 200 and json.loads(body)["cid"] == cid, f"{status} {body}")
        status, _ = api(d, "GET", "/health")
        expect(status == 204, f"/health without credentials answered {status}")
        # Clients that send credentials only when challenged are challenged for both schemes.
        status, h = cors_exchange(d, "GET", "/id", {})
        expect(status == 401 and sorted(h.get_all("WWW-Authenticate")) == [
            'Basic realm="Restricted IPFS Cluster API"', 'Bearer realm="Restricted IPFS Cluster API"'],
            f"{status} {dict(h)}")
        # Credentials are checked on the head: a body announced without them is never waited
        # for (nor held), the 401 comes at once and the connection closes.
        got, closed = raw_exchange(d, b"POST /pins HTTP/1.1\r\nHost: localhost\r\n"
                                      b"Content-Length: 60000000\r\n\r\n", timeout=10)
        expect(closed and got.startswith(b"HTTP/1.1 401 ") and b"Connection: close" in got, got[:300])
        # The CLI passes --basic-auth (and refuses without it).
        r = d.cli("pin", "ls")
        expect(r.returncode == 2 and "401" in r.stdout + r.stderr, r.stdout + r.stderr)
        r = d.cli("pin", "ls", "--basic-auth", "admin:s3cret")
        expect(r.returncode == 0 and cid in r.stdout, r.stdout + r.stderr)


def test_the_daemon_raises_its_open_files_limit_to_the_hard_limit(ctx):
    # 1024 API connections (max_connections) would otherwise use up the usual soft limit.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024 and hard != resource.RLIM_INFINITY:
        print(f"hard limit {hard}: nothing to raise")
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by the daemon
    try:
        c, d = single_peer(ctx)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with c:
        line = next(l for l in open(f"/proc/{d.proc.pid}/limits") if l.startswith("Max open files"))
        want = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        expect(line.split()[3] == want, line)


def test_a_non_loopback_api_without_credentials_is_refused_at_start(ctx):
    c = LocalCluster(ctx, 1, peers=False)
    with c:
        d = c.daemons[0]
        # A documentation address (TEST-NET-1) that no interface here has: even if the check
        # were missing, nothing would listen beyond loopback (the bind would fail, differently).
        port = free_port()
        c.edit(d, lambda cfg: cfg["api"]["restapi"].update(http_listen_multiaddress=f"/ip4/192.0.2.1/tcp/{port}"))
        d.start()
        code = d.proc.wait(timeout=30)
        log = d.log()
        expect(code != 0, f"the daemon started: {log[-1000:]}")
        expect("basic_auth_credentials" in log and "192.0.2.1" in log, log[-1000:])
        expect("cannot listen" not in log, f"refused by the bind, not by the check: {log[-1000:]}")
        expect("is READY" not in log, "the daemon became ready")


# --- IPFS paths ----------------------------------------------------------------------------------

def with_ipfs(ctx):
    require_ipfs(ctx.source_root)
    return Ipfs(ctx.source_root, ctx.folder("ipfs")).start()


def test_a_sub_path_is_resolved_by_ipfs_and_its_cid_pinned_and_unpinned(ctx):
    node = with_ipfs(ctx)
    try:
        tree = node.add_folder({"sub/f.txt": os.urandom(3000), "a.txt": os.urandom(100)})
        root, leaf = tree["d"], tree["d/sub/f.txt"]
        c, d = single_peer(ctx, ipfs=node)
        with c:
            status, body = d.api("POST", f"/pins/ipfs/{root}/sub/f.txt?name=leaf&replication=1")
            expect(status == 200, f"{status} {body}")
            pin = json.loads(body)
            expect(pin["cid"] == leaf and pin["name"] == "leaf", body)
            expect(pin["replication_factor_min"] == 1, body)
            expect(d.pin_cids() == {leaf}, f"pinset {d.pin_cids()} is not just {leaf}")
            wait_until(lambda: node.pinned(leaf), 60, "IPFS to pin the file the path names")
            expect(node.pin_type(root) is None, "the root of the path was pinned too")
            # A path that does not resolve: 400 quoting IPFS, nothing committed.
            status, body = d.api("POST", f"/pins/ipfs/{root}/no-such-file")
            expect(status == 400, f"{status} {body}")
            message = error_message(body)
            expect("no-such-file" in message and "IPFS error (resolve)" in message, message)
            # Unpinning by the same path unpins the CID.
            status, body = d.api("DELETE", f"/pins/ipfs/{root}/sub/f.txt")
            expect(status == 200 and json.loads(body)["cid"] == leaf, f"{status} {body}")
            expect(d.pin_cids() == set(), "DELETE by path left the pin")
            wait_until(lambda: not node.pinned(leaf), 60, "IPFS to unpin it")
            status, body = d.api("DELETE", f"/pins/ipfs/{root}/sub/f.txt")
            expect(status == 404, f"unpinning again: {status} {body}")
    finally:
        node.stop()


def test_plain_ipfs_and_ipld_cid_paths_and_an_ipns_name_are_pinned(ctx):
    node = with_ipfs(ctx)
    try:
        tree = node.add_folder({"sub/f.txt": os.urandom(500), "b.txt": os.urandom(50)})
        root, sub = tree["d"], tree["d/sub"]
        # An IPNS name published on this daemon (allowed offline): the daemon's own key.
        status, text = node.call(f"name/publish?arg=/ipfs/{root}&allow-offline=true&resolve=false")
        expect(status == 200, text)
        name = json.loads(text)["Name"]
        c, d = single_peer(ctx, ipfs=node)
        with c:
            for path, cid in [(f"/ipfs/{root}", root), (f"/ipld/{tree['d/b.txt']}", tree["d/b.txt"]),
                              (f"/ipns/{name}/sub", sub)]:
                status, body = d.api("POST", f"/pins{path}")
                expect(status == 200 and json.loads(body)["cid"] == cid, f"POST /pins{path}: {status} {body}")
            expect(d.pin_cids() == {root, tree["d/b.txt"], sub}, str(d.pin_cids()))
            # js-ipfs does not resolve /ipld/ paths with a sub path: its refusal is quoted.
            status, body = d.api("POST", f"/pins/ipld/{root}/sub")
            expect(status == 400 and "IPFS error (resolve)" in error_message(body), f"{status} {body}")
            status, body = d.api("POST", "/pins/ipns")
            expect(status == 400 or status == 404, f"{status} {body}")
            status, body = d.api("DELETE", f"/pins/ipns/{name}/sub")
            expect(status == 200 and json.loads(body)["cid"] == sub, f"{status} {body}")
            expect(sub not in d.pin_cids(), "DELETE by an IPNS path left the pin")
    finally:
        node.stop()


def test_the_cli_pins_and_unpins_ipfs_paths_and_checks_them_before_contacting_anything(ctx):
    node = with_ipfs(ctx)
    try:
        tree = node.add_folder({"sub/f.txt": os.urandom(800), "g.txt": os.urandom(90)})
        root, leaf = tree["d"], tree["d/sub/f.txt"]
        c, d = single_peer(ctx, ipfs=node)
        with c:
            r = d.cli("pin", "add", "--no-status", "--enc", "json", "--name", "f", f"/ipfs/{root}/sub/f.txt")
            expect(r.returncode == 0 and json.loads(r.stdout)["cid"] == leaf, r.stdout + r.stderr)
            # pin update to a path: the new CID takes the existing pin's options.
            r = d.cli("pin", "update", "--enc", "json", leaf, f"/ipfs/{root}/g.txt")
            expect(r.returncode == 0, r.stdout + r.stderr)
            updated = json.loads(r.stdout)
            expect(updated["cid"] == tree["d/g.txt"] and updated["pin_update"] == leaf
                   and updated["name"] == "f", r.stdout)
            r = d.cli("pin", "add", "--wait", "--wait-timeout", "60s", f"/ipfs/{root}/sub")
            expect(r.returncode == 0 and tree["d/sub"] in r.stdout, r.stdout + r.stderr)
            expect(node.pinned(tree["d/sub"]), "--wait returned before IPFS pinned it")
            r = d.cli("pin", "rm", f"/ipfs/{root}/sub/f.txt")
            expect(r.returncode == 0 and leaf in r.stdout, r.stdout + r.stderr)
            expect(leaf not in d.pin_cids(), "pin rm by path left the pin")
            r = d.cli("pin", "add", f"/ipfs/{root}/missing")
            expect(r.returncode == 2 and "missing" in r.stdout + r.stderr, r.stdout + r.stderr)
        # Bad arguments fail before anything is contacted: no API listens on this port.
        closed = f"/ip4/127.0.0.1/tcp/{free_port()}"
        for args, words in [(["pin", "add", "not-a-cid"], ["not-a-cid", "/ipfs/"]),
                            (["pin", "rm", "not-a-cid"], ["not-a-cid"]),
                            (["pin", "add", "/ipfs/not-a-cid/x"], ["not-a-cid"]),
                            (["pin", "add", "/foo/bar"], ["/foo/bar", "/ipfs/", "/ipns/"]),
                            (["pin", "add", "/ipns"], ["/ipns"]),
                            (["pin", "update", f"/ipfs/{root}", leaf], ["existing", "CID"])]:
            r = ctx.run(*args, "--host", closed)
            out = r.stdout + r.stderr
            expect(r.returncode == 1, f"{args}: exit {r.returncode}: {out}")
            expect("cannot reach" not in out and "refused" not in out, f"{args} contacted the API: {out}")
            for word in words:
                expect(word in out, f"{args}: the message lacks {word!r}: {out}")
    finally:
        node.stop()


if __name__ == "__main__":
    run(globals())
