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


def probe(ctx, maddr, *args, ok=True, timeout=120):
    """Runs ipfs_probe; returns its JSON lines (the last one is the outcome)."""
    r = subprocess.run([ctx.binary, maddr, *args], capture_output=True, text=True, timeout=timeout)
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


def test_ipfs_refusals_are_quoted(ctx):
    require_ipfs(ctx)
    node = daemon("a")
    out = probe(ctx, node.maddr, "swarm-connect", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                ok=False)[-1]
    expect(out["error"].startswith("IPFS error (swarm/connect): "), out["error"])


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
