"""The Kubo RPC connector against a real IPFS daemon (js-ipfs from the npm lock file, started by
scripts/ipfs-node on loopback ports), driven through tests/net's ipfs_probe. Content is added and
every pin state is checked by asking the IPFS API directly, never through the connector itself.
Usage: test_ipfs_connector.py IPFS_PROBE SOURCE_ROOT [--only TEST]"""
import atexit
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import free_port  # noqa: E402
from harness import expect, run  # noqa: E402
from ipfs import Ipfs  # noqa: E402

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base32_of(cid):
    """The base32 text ("b...") of a CIDv1 written in base58btc ("z...")."""
    expect(cid.startswith("z"), f"not a base58btc CIDv1: {cid}")
    n = 0
    for ch in cid[1:]:
        n = n * 58 + B58.index(ch)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


_source_root = None
_scratch = None
_daemons = {}


def root_of_source():
    return _source_root


def daemon(name):
    """A daemon shared by the tests (started on first use, stopped when the run ends)."""
    global _scratch
    if name not in _daemons:
        if _scratch is None:
            _scratch = tempfile.mkdtemp(prefix="clusterpin-ipfs-real-")
        _daemons[name] = Ipfs(root_of_source(), os.path.join(_scratch, name)).start()
    return _daemons[name]


@atexit.register
def _stop_daemons():
    for node in _daemons.values():
        node.stop()
    if _scratch:
        shutil.rmtree(_scratch, ignore_errors=True)


def probe(ctx, maddr, *args, ok=True, timeout=120, options=()):
    """Runs ipfs_probe; returns its JSON lines (the last one is the outcome)."""
    r = subprocess.run([ctx.binary, *options, maddr, *args], capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    expect(lines, f"ipfs_probe {' '.join(args)} printed nothing (exit {r.returncode}): {r.stderr}")
    if ok:
        expect(r.returncode == 0 and lines[-1].get("ok"), f"ipfs_probe {' '.join(args)}: {r.stdout} {r.stderr}")
    else:
        expect(r.returncode == 1 and "error" in lines[-1], f"ipfs_probe {' '.join(args)} should fail: {r.stdout}")
    return lines


def require_ipfs(ctx):
    cli = os.path.join(ctx.source_root, "node_modules", "ipfs", "src", "cli.js")
    expect(os.path.exists(cli), "node_modules/ipfs is missing: run `npm ci` at the repository root "
                                "(or scripts/ipfs-node ensure-installed)")


def test_id_reports_the_daemons_peer_id_and_addresses(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    out = probe(ctx, node.maddr, "id")[-1]
    status, text = node.call("id")
    expect(status == 200, text)
    expect(out["id"] == json.loads(text)["ID"], f"{out} vs {text}")
    expect(any(f"/tcp/{node.swarm_port}/" in a for a in out["addresses"]), str(out))


def test_pin_add_then_pin_rm_change_what_ipfs_has_pinned(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    cid = node.add(os.urandom(300_000))
    expect(node.pin_type(cid) is None, "added with pin=false but pinned")
    probe(ctx, node.maddr, "pin-add", cid)
    expect(node.pin_type(cid) == "recursive", f"pin-add did not pin {cid}")
    expect(probe(ctx, node.maddr, "pin-ls-one", cid)[-1]["pinned"] is True, "pin-ls-one says unpinned")
    listed = probe(ctx, node.maddr, "pin-ls", "recursive")
    expect({"cid": cid, "type": "recursive"} in listed[:-1], f"{cid} not in {listed}")
    expect(listed[-1]["count"] == len(listed) - 1, str(listed[-1]))
    probe(ctx, node.maddr, "pin-add", cid)  # already pinned: nothing to do, still a success
    probe(ctx, node.maddr, "pin-rm", cid)
    expect(node.pin_type(cid) is None, f"pin-rm left {cid} pinned")
    expect(probe(ctx, node.maddr, "pin-ls-one", cid)[-1]["pinned"] is False, "pin-ls-one says pinned")
    probe(ctx, node.maddr, "pin-rm", cid)  # "not pinned" counts as unpinned


def test_pin_add_many_pins_every_cid_with_one_call_or_fails_when_one_cannot_be_fetched(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    cids = [node.add(os.urandom(2_000 + i)) for i in range(5)]
    probe(ctx, node.maddr, "pin-add-many", *cids)
    for cid in cids:
        expect(node.pin_type(cid) == "recursive", f"pin-add-many did not pin {cid}")
    # A CID nobody has: IPFS keeps looking for it, the call makes no progress for pin_timeout
    # and fails as a whole.
    fetched = node.add(os.urandom(3_000))
    missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    out = probe(ctx, node.maddr, "pin-add-many", fetched, missing, ok=False,
                options=("--pin-timeout", "2000"))
    expect("pin/add of 2 CIDs" in out[-1]["error"], str(out))
    expect(node.pin_type(missing) is None, "a CID nobody has got pinned")
    for cid in cids + [fetched]:  # IPFS may have pinned `fetched` before it stalled
        probe(ctx, node.maddr, "pin-rm", cid)


def test_a_base58btc_cidv1_from_ipfs_matches_its_base32_text(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    b58 = node.add(os.urandom(5_000), "pin=false&cid-version=1&raw-leaves=true")
    b32 = base32_of(b58)
    probe(ctx, node.maddr, "pin-add", b32)
    expect(node.pin_type(b58) == "recursive", f"pin-add {b32} did not pin {b58}")
    expect(probe(ctx, node.maddr, "pin-ls-one", b32)[-1]["pinned"] is True, "pin-ls-one by base32")
    listed = probe(ctx, node.maddr, "pin-ls", "all")
    expect({"cid": b32, "type": "recursive"} in listed[:-1], f"{b32} not listed by bytes: {listed}")
    probe(ctx, node.maddr, "pin-rm", b32)
    expect(node.pin_type(b58) is None, "pin-rm by base32 did not unpin")


def test_direct_pins_are_listed_as_direct(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    cid = node.add(os.urandom(1_000))
    probe(ctx, node.maddr, "pin-add", cid, "--direct")
    expect(node.pin_type(cid) == "direct", f"{cid} is {node.pin_type(cid)}, not direct")
    listed = probe(ctx, node.maddr, "pin-ls", "direct")
    expect({"cid": cid, "type": "direct"} in listed[:-1], str(listed))
    probe(ctx, node.maddr, "pin-rm", cid)
    expect(node.pin_type(cid) is None, "direct pin not removed")


def test_pin_update_without_pin_update_in_ipfs_pins_the_new_cid_and_keeps_the_old(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    old, new = node.add(os.urandom(20_000)), node.add(os.urandom(20_000))
    probe(ctx, node.maddr, "pin-add", old)
    probe(ctx, node.maddr, "pin-update", old, new)
    expect(node.pin_type(new) == "recursive", "pin-update did not pin the new CID")
    expect(node.pin_type(old) == "recursive", "pin-update unpinned the old CID")
    for cid in (old, new):
        probe(ctx, node.maddr, "pin-rm", cid)


def test_repo_stat_reads_the_sizes_js_ipfs_gives_as_strings(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    out = probe(ctx, node.maddr, "repo-stat")[-1]
    status, text = node.call("repo/stat?size-only=true")
    expect(status == 200, text)
    expect(out["storage_max"] == int(json.loads(text)["StorageMax"]), f"{out} vs {text}")
    expect(out["repo_size"] > 0, str(out))


def test_repo_gc_removes_unpinned_blocks(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    b58 = node.add(os.urandom(2_000), "pin=false&cid-version=1&raw-leaves=true")
    removed = probe(ctx, node.maddr, "repo-gc")[-1]["removed"]
    expect(base32_of(b58) in removed, f"{b58} ({base32_of(b58)}) not in {removed}")


def test_pin_add_fetches_content_from_a_swarm_peer(ctx):
    require_ipfs(ctx)
    a, b = daemon("a"), daemon("b")
    cid = a.add(os.urandom(400_000))
    addr = probe(ctx, a.maddr, "id")[-1]["addresses"]
    addr = next(x for x in addr if "/127.0.0.1/" in x)
    probe(ctx, b.maddr, "swarm-connect", addr)
    probe(ctx, b.maddr, "pin-add", cid)
    expect(b.pin_type(cid) == "recursive", "b did not pin content that only a had")
    probe(ctx, b.maddr, "pin-rm", cid)


def test_resolve_gives_the_cid_a_path_names(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    tree = node.add_folder({"sub/f.txt": os.urandom(700), "g.txt": os.urandom(70)})
    root = tree["d"]
    cases = [(f"/ipfs/{root}/sub/f.txt", tree["d/sub/f.txt"]), (f"/ipfs/{root}/sub/", tree["d/sub"]),
             (f"/ipfs/{root}//g.txt", tree["d/g.txt"]), (f"/ipfs/{root}", root), (f"/ipld/{root}", root)]
    for path, cid in cases:
        out = probe(ctx, node.maddr, "resolve", path)[-1]
        expect(out["cid"] == cid, f"resolve {path}: {out}, expected {cid}")
    # What js-ipfs itself answers for the root: "/ipfs/zQm..." (a CIDv0 with a multibase prefix),
    # which is why a plain /ipfs/<cid> is never sent and the answer is read leniently.
    status, text = node.call(f"resolve?arg=/ipfs/{root}")
    expect(status == 200 and json.loads(text)["Path"] in (f"/ipfs/{root}", f"/ipfs/z{root}"), text)
    # An IPNS name published on this daemon (possible offline with allow-offline).
    status, text = node.call(f"name/publish?arg=/ipfs/{root}&allow-offline=true&resolve=false")
    expect(status == 200, text)
    name = json.loads(text)["Name"]
    expect(probe(ctx, node.maddr, "resolve", f"/ipns/{name}")[-1]["cid"] == root, "ipns name")
    expect(probe(ctx, node.maddr, "resolve", f"/ipns/{name}/sub/f.txt")[-1]["cid"] == tree["d/sub/f.txt"],
           "ipns name with a sub path")


def test_resolve_failures_quote_ipfs_or_name_the_bad_path(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    root = node.add_folder({"x.txt": b"x"})["d"]
    out = probe(ctx, node.maddr, "resolve", f"/ipfs/{root}/nope", ok=False)[-1]
    expect(out["error"].startswith("IPFS error (resolve): ") and "nope" in out["error"], out["error"])
    # Checked before anything is sent: the connector names what is accepted.
    for path in ["/foo/bar", "/ipfs", f"ipfs/{root}", "/ipfs/not-a-cid/x"]:
        out = probe(ctx, node.maddr, "resolve", path, ok=False)[-1]
        expect(path.strip("/").split("/")[-1] in out["error"] or "not-a-cid" in out["error"], out["error"])
    out = probe(ctx, node.maddr, "resolve", "/foo/bar", ok=False)[-1]
    expect("/ipfs/<cid>" in out["error"] and "/ipns/<name>" in out["error"], out["error"])
    # An unknown IPNS name: IPFS's refusal, quoted.
    out = probe(ctx, node.maddr, "resolve", "/ipns/unknown-name.invalid", ok=False, timeout=180)[-1]
    expect(out["error"].startswith("IPFS error (resolve): "), out["error"])


def test_swarm_peers_lists_the_connected_ipfs_peers(ctx):
    require_ipfs(ctx)
    a, b = daemon("a"), daemon("b")
    b_id = probe(ctx, b.maddr, "id")[-1]["id"]
    before = probe(ctx, a.maddr, "swarm-peers")[-1]["peers"]
    status, text = a.call("swarm/peers")
    expect(status == 200, text)
    direct = [p["Peer"] for p in json.loads(text)["Peers"]]
    expect(sorted(before) == sorted(set(direct)), f"{before} vs what IPFS answers: {text}")
    addr = next(x for x in probe(ctx, b.maddr, "id")[-1]["addresses"] if "/127.0.0.1/" in x)
    probe(ctx, a.maddr, "swarm-connect", addr)
    after = probe(ctx, a.maddr, "swarm-peers")[-1]["peers"]
    expect(b_id in after, f"{b_id} not in {after}")
    expect(len(after) == len(set(after)), f"a peer listed twice: {after}")
    status, text = a.call("swarm/peers")
    expect(sorted(after) == sorted({p["Peer"] for p in json.loads(text)["Peers"]}), f"{after} vs {text}")


class FakeKubo:
    """A tiny stand-in that answers a few calls the way Kubo does (where it differs from js-ipfs):
    `answers` maps "/api/v0/<call>" to (status, body); every request's target is recorded."""

    def __init__(self, answers):
        import http.server
        import threading
        fake = self
        self.answers = answers
        self.targets = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server naming
                fake.targets.append(self.path)
                status, body = fake.answers.get(self.path.split("?")[0], (404, '{"Message":"404 page not found"}'))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.maddr = f"/ip4/127.0.0.1/tcp/{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_kubo_shaped_answers_to_swarm_peers_and_resolve(ctx):
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
    kubo = FakeKubo({"/api/v0/swarm/peers": (200, '{"Peers":null}'),
                     "/api/v0/resolve": (200, json.dumps({"Path": f"/ipfs/{cid}"}))})
    try:
        # Kubo answers {"Peers":null} when no peer is connected.
        expect(probe(ctx, kubo.maddr, "swarm-peers")[-1]["peers"] == [], "null Peers")
        # One entry per connection: a peer with two connections is listed once.
        kubo.answers["/api/v0/swarm/peers"] = (200, json.dumps({"Peers": [
            {"Addr": "/ip4/127.0.0.1/tcp/4001", "Peer": peer}, {"Addr": "/ip4/127.0.0.1/udp/4001/quic-v1", "Peer": peer}]}))
        expect(probe(ctx, kubo.maddr, "swarm-peers")[-1]["peers"] == [peer], "a peer listed twice")
        kubo.answers["/api/v0/swarm/peers"] = (200, '{"Peers":[{"Addr":"/ip4/127.0.0.1/tcp/4001"}]}')
        out = probe(ctx, kubo.maddr, "swarm-peers", ok=False)[-1]
        expect("without a Peer" in out["error"], out["error"])
        # resolve sends the path as arg and reads the CID; a plain /ipfs/<cid> is not sent.
        out = probe(ctx, kubo.maddr, "resolve", "/ipns/example.org/a b")[-1]
        expect(out["cid"] == cid, str(out))
        expect(any(t.startswith("/api/v0/resolve?arg=%2Fipns%2Fexample.org%2Fa%20b") for t in kubo.targets), str(kubo.targets))
        sent = len(kubo.targets)
        expect(probe(ctx, kubo.maddr, "resolve", f"/ipfs/{cid}")[-1]["cid"] == cid, "plain /ipfs/<cid>")
        expect(len(kubo.targets) == sent, f"a plain /ipfs/<cid> was sent to IPFS: {kubo.targets[sent:]}")
        # A path that stops inside a block (Kubo's remainder) is not a CID to pin.
        kubo.answers["/api/v0/resolve"] = (200, json.dumps({"Path": f"/ipfs/{cid}/some/field"}))
        out = probe(ctx, kubo.maddr, "resolve", f"/ipld/{cid}/some/field", ok=False)[-1]
        expect("inside a block" in out["error"], out["error"])
        # Kubo's error object is quoted.
        kubo.answers["/api/v0/resolve"] = (500, '{"Message":"could not resolve name","Code":0,"Type":"error"}')
        out = probe(ctx, kubo.maddr, "resolve", "/ipns/example.org", ok=False)[-1]
        expect(out["error"] == "IPFS error (resolve): could not resolve name", out["error"])
    finally:
        kubo.close()


def test_ipfs_refusals_are_quoted(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    out = probe(ctx, node.maddr, "swarm-connect", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                ok=False)[-1]
    expect(out["error"].startswith("IPFS error (swarm/connect): "), out["error"])


def test_swarm_peers_and_resolve_of_an_unreachable_daemon_name_it(ctx):
    port = free_port()
    for args in (["swarm-peers"], ["resolve", "/ipns/example.org"]):
        out = probe(ctx, f"/ip4/127.0.0.1/tcp/{port}", *args, ok=False)[-1]
        expect(out["error"] == f"IPFS daemon unreachable at /ip4/127.0.0.1/tcp/{port}: connection refused",
               out["error"])


def test_an_unreachable_daemon_is_named_with_the_reason(ctx):
    port = free_port()
    out = probe(ctx, f"/ip4/127.0.0.1/tcp/{port}", "pin-add",
                "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn", ok=False)[-1]
    expect(out["error"] == f"IPFS daemon unreachable at /ip4/127.0.0.1/tcp/{port}: connection refused",
           out["error"])


def test_a_stopped_daemon_is_unreachable(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    node.stop()
    out = probe(ctx, node.maddr, "id", ok=False)[-1]
    expect(out["error"] == f"IPFS daemon unreachable at {node.maddr}: connection refused", out["error"])


if __name__ == "__main__":
    _source_root = os.path.abspath(sys.argv[2])
    run(globals())
