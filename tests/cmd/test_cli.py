"""The binary's shape (busybox dispatch, help, errors) and `clusterpin init`, run as a user would."""
import fcntl
import json
import os
import re
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, free_port, make_cids  # noqa: E402
from harness import expect, run  # noqa: E402
from http_stub import HttpStub  # noqa: E402

APPLETS = ["init", "daemon", "id", "peers", "pin", "status", "sync", "recover", "health",
           "state", "version", "help"]
SECRET = "2588b80d5cb05374fa142aed6cbb047d1f4ef8ef15e37eba68c65b9d30df67ed"
DEAD_HOST = "/ip4/127.0.0.1/tcp/1"  # nothing listens: reaching it is a transport error
PEER_ID = "12D3KooWKy1QdKcmjXrUbqsvHdNkQqvBLtXSQHxa2JZMqz39ZKzn"


def one_daemon(ctx, name="peer"):
    """One running daemon (no IPFS behind it: its pins never get pinned). The caller kills it."""
    cluster = LocalCluster(ctx, 1, name=name)
    cluster.edit(cluster.daemons[0], lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(
        node_multiaddress=f"/ip4/127.0.0.1/tcp/{free_port()}"))
    return cluster


class FakeApi(HttpStub):
    """A REST API that answers each "METHOD /path" (query ignored) with a canned response:
    (status, body) or, for a chunked stream, (status, body, trailers). Records each request's
    target and body."""

    def __init__(self, routes):
        self.routes = routes
        self.requests = []
        super().__init__(self._answer)

    def _answer(self, conn, method, target, body):
        key = f"{method} {target.split('?')[0]}"
        self.requests.append((target, body.decode()))
        status, payload, *trailers = self.routes.get(key, (404, '{"code":404,"message":"no route"}'))
        reason = {200: "OK", 204: "No Content", 404: "Not Found"}.get(status, "Status")
        out = f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        if trailers:
            out += "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            out += "Trailer: X-Stream-Error\r\n\r\n"
            data = payload.encode()
            out = out.encode() + (f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b"")
            out += b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in trailers[0].items()).encode() + b"\r\n"
            conn.sendall(out)
        elif status == 204:
            conn.sendall((out + "\r\n").encode())
        else:
            data = payload.encode()
            out += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            conn.sendall(out.encode() + data)


def test_help_lists_every_applet(ctx):
    r = ctx.run("help")
    expect(r.returncode == 0, r.stderr)
    for applet in APPLETS:
        expect(re.search(rf"^  {applet} ", r.stdout, re.M), f"{applet} missing from help")


def test_version_flag_prints_version(ctx):
    r = ctx.run("--version")
    expect(r.returncode == 0 and re.match(r"clusterpin \d+\.\d+\.\d+\n$", r.stdout), r.stdout)


def test_unknown_applet_is_one_line_naming_it_with_the_applet_list(ctx):
    r = ctx.run("frobnicate")
    expect(r.returncode == 1, f"exit {r.returncode}")
    lines = r.stderr.strip().splitlines()
    expect(len(lines) == 1, r.stderr)
    expect("'frobnicate'" in lines[0] and "init, daemon" in lines[0], lines[0])


def test_unknown_flag_is_one_line_naming_it(ctx):
    r = ctx.run("init", "--frobnicate")
    expect(r.returncode == 1, f"exit {r.returncode}")
    lines = r.stderr.strip().splitlines()
    expect(len(lines) == 1 and "frobnicate" in lines[0] and "applets:" in lines[0], r.stderr)


def test_every_applet_answers_help(ctx):
    for applet in APPLETS:
        r = ctx.run(applet, "--help")
        expect(r.returncode == 0, f"{applet} --help exit {r.returncode}: {r.stderr}")
        expect("clusterpin" in r.stdout, f"{applet} --help printed nothing useful")


def test_symlink_named_after_an_applet_runs_it(ctx):
    link = os.path.join(ctx.folder("bin"), "clusterpin-version")
    os.symlink(ctx.binary, link)
    r = ctx.run(argv0=link)
    expect(r.returncode == 0 and r.stdout.startswith("clusterpin "), r.stdout + r.stderr)
    link = os.path.join(ctx.folder("bin"), "clusterpin-init")
    os.symlink(ctx.binary, link)
    r = ctx.run("--config", ctx.folder("viasymlink"), argv0=link)
    expect(r.returncode == 0, r.stderr)
    expect(os.path.exists(os.path.join(ctx.scratch, "viasymlink", "service.json")), "no file")


def test_symlink_with_unknown_applet_name_fails(ctx):
    link = os.path.join(ctx.folder("bin"), "clusterpin-nope")
    os.symlink(ctx.binary, link)
    r = ctx.run(argv0=link)
    expect(r.returncode == 1 and "'nope'" in r.stderr, r.stderr)


def test_init_writes_a_private_complete_config(ctx):
    folder = os.path.join(ctx.scratch, "cfg")
    r = ctx.run("init", "--config", folder)
    expect(r.returncode == 0, r.stderr)
    path = os.path.join(folder, "service.json")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    expect(mode == 0o600, f"mode {oct(mode)}")
    cfg = json.load(open(path))
    for section in ["cluster", "consensus", "api", "ipfs_connector", "pin_tracker", "monitor",
                    "allocator", "informer"]:
        expect(section in cfg, f"section {section} missing")
    expect(re.fullmatch(r"12D3KooW[1-9A-HJ-NP-Za-km-z]{44}", cfg["cluster"]["id"]), cfg["cluster"]["id"])
    expect(re.fullmatch(r"[0-9a-f]{64}", cfg["cluster"]["secret"]), "secret not 64 hex")
    expect(cfg["cluster"]["private_key"].startswith("CAESQ"), "not a libp2p Ed25519 key")
    # It prints the peer id and a multiaddr that ends with it.
    expect(cfg["cluster"]["id"] in r.stdout, r.stdout)
    expect(re.search(r"/tcp/9096/p2p/" + cfg["cluster"]["id"], r.stdout), r.stdout)


def test_init_generates_a_different_identity_and_secret_each_time(ctx):
    a, b = ctx.folder("a"), ctx.folder("b")
    expect(ctx.run("init", "--config", a).returncode == 0, "init a")
    expect(ctx.run("init", "--config", b).returncode == 0, "init b")
    ca = json.load(open(os.path.join(a, "service.json")))["cluster"]
    cb = json.load(open(os.path.join(b, "service.json")))["cluster"]
    expect(ca["id"] != cb["id"] and ca["secret"] != cb["secret"], "identity or secret repeated")


def test_init_refuses_to_overwrite_without_force_and_names_the_file(ctx):
    folder = ctx.folder("cfg")
    expect(ctx.run("init", "--config", folder).returncode == 0, "first init")
    path = os.path.join(folder, "service.json")
    before = open(path).read()
    r = ctx.run("init", "--config", folder)
    expect(r.returncode == 1 and path in r.stderr and "--force" in r.stderr, r.stderr)
    expect(open(path).read() == before, "file changed without --force")
    # --force writes every setting anew (keeping identity and secret): an edit is undone.
    cfg = json.loads(before)
    cfg["consensus"]["raft"]["snapshot_threshold"] = 5
    edited = json.dumps(cfg)
    open(path, "w").write(edited)
    r = ctx.run("init", "--config", folder, "--force")
    rewritten = json.load(open(path))
    expect(r.returncode == 0 and rewritten["consensus"]["raft"]["snapshot_threshold"] != 5,
           "--force did not overwrite")


def test_init_secret_from_flag_then_environment(ctx):
    folder = ctx.folder("flag")
    expect(ctx.run("init", "--config", folder, "--secret", SECRET).returncode == 0, "init")
    expect(json.load(open(os.path.join(folder, "service.json")))["cluster"]["secret"] == SECRET, "flag")
    folder = ctx.folder("env")
    r = ctx.run("init", "--config", folder, env={"CLUSTER_SECRET": SECRET})
    expect(r.returncode == 0, r.stderr)
    expect(json.load(open(os.path.join(folder, "service.json")))["cluster"]["secret"] == SECRET, "env")


def test_init_refuses_a_bad_secret_and_writes_nothing(ctx):
    folder = os.path.join(ctx.scratch, "bad")
    r = ctx.run("init", "--config", folder, "--secret", "abc")
    expect(r.returncode == 1 and "64 hex" in r.stderr, r.stderr)
    expect(not os.path.exists(os.path.join(folder, "service.json")), "file written anyway")
    r = ctx.run("init", "--config", folder, "--secret", "")
    expect(r.returncode == 1 and "--insecure-empty-secret" in r.stderr, r.stderr)


def test_init_uses_clusterpin_path_when_no_config_flag(ctx):
    folder = os.path.join(ctx.scratch, "fromenv")
    r = ctx.run("init", env={"CLUSTERPIN_PATH": folder})
    expect(r.returncode == 0 and os.path.exists(os.path.join(folder, "service.json")), r.stderr)


def test_init_defaults_to_home_dot_clusterpin(ctx):
    home = ctx.folder("home")
    r = ctx.run("init", env={"HOME": home})
    expect(r.returncode == 0, r.stderr)
    expect(os.path.exists(os.path.join(home, ".clusterpin", "service.json")), "not in ~/.clusterpin")


def test_init_peers_fill_cluster_peers_and_bad_ones_are_refused(ctx):
    peer = "/ip4/127.0.0.1/tcp/9196/p2p/12D3KooWKy1QdKcmjXrUbqsvHdNkQqvBLtXSQHxa2JZMqz39ZKzn"
    folder = ctx.folder("peers")
    r = ctx.run("init", "--config", folder, "--peers", peer + "," + peer.replace("9196", "9296"))
    expect(r.returncode == 0, r.stderr)
    peers = json.load(open(os.path.join(folder, "service.json")))["cluster"]["peers"]
    expect(peers == [peer, peer.replace("9196", "9296")], str(peers))
    r = ctx.run("init", "--config", ctx.folder("badpeers"), "--peers", "/ip4/300.1.1.1/tcp/1")
    expect(r.returncode == 1 and "300.1.1.1" in r.stderr, r.stderr)


def test_pin_add_of_a_bad_cid_fails_with_the_reason_before_contacting_anything(ctx):
    # Nothing listens on this port: a transport error would mean the CID was not checked first.
    r = ctx.run("pin", "add", "--host", "/ip4/127.0.0.1/tcp/1", "not-a-cid")
    expect(r.returncode == 1, f"exit {r.returncode}")
    expect("unknown multibase prefix 'n'" in r.stderr, r.stderr)
    r = ctx.run("pin", "add", "--host", "/ip4/127.0.0.1/tcp/1",
                "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1")
    expect(r.returncode == 1 and "bad CID" in r.stderr, r.stderr)


def test_extra_arguments_are_refused_naming_them_and_what_is_accepted(ctx):
    folder = ctx.folder("cfg")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    existed = os.path.exists("backup.ndjson")
    r = ctx.run("state", "export", "backup.ndjson", "--config", folder)
    expect(r.returncode == 1 and r.stdout == "", f"exit {r.returncode}: {r.stdout}")
    expect("'backup.ndjson'" in r.stderr and "takes no arguments" in r.stderr, r.stderr)
    expect(len(r.stderr.strip().splitlines()) == 1, r.stderr)
    expect(existed or not os.path.exists("backup.ndjson"), "file created")
    for args in (["version", "extra"], ["--version", "extra"], ["-v", "pin"]):
        r = ctx.run(*args)
        expect(r.returncode == 1 and r.stdout == "" and f"'{args[1]}'" in r.stderr, f"{args}: {r.stdout}{r.stderr}")
    r = ctx.run("peers", "rm", PEER_ID, "extra", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "'extra'" in r.stderr and "<peer-id>" in r.stderr, r.stderr)
    r = ctx.run("state", "import", "a.ndjson", "b.ndjson", "--config", folder)
    expect(r.returncode == 1 and "'b.ndjson'" in r.stderr and "[file]" in r.stderr, r.stderr)
    r = ctx.run("health", "metrics", "freespace", "ping", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "'ping'" in r.stderr, r.stderr)
    r = ctx.run("help", "pin", "extra")
    expect(r.returncode == 1 and "'extra'" in r.stderr and r.stdout == "", r.stdout + r.stderr)
    # Commands that take several arguments still take them all (and then fail on the dead host).
    cids = make_cids(2)
    for args in (["pin", "add", *cids], ["pin", "rm", *cids], ["status", *cids], ["sync", *cids],
                 ["recover", *cids], ["peers", "rm", PEER_ID]):
        r = ctx.run(*args, "--host", DEAD_HOST)
        expect(r.returncode == 1 and "unexpected argument" not in r.stderr, f"{args}: {r.stderr}")
    expect(ctx.run("version", "--help").returncode == 0, "version --help")


def test_state_import_takes_the_file_with_short_f_as_the_man_page_says(ctx):
    folder = ctx.folder("cfg")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    cids = make_cids(2, seed=7)
    pins = os.path.join(ctx.scratch, "pins.ndjson")
    with open(pins, "w") as f:
        for cid in cids:
            f.write(json.dumps({"cid": cid, "name": "n", "replication_factor_min": -1,
                                "replication_factor_max": -1}) + "\n")
    r = ctx.run("state", "import", "-f", pins, "--force", "--config", folder)
    expect(r.returncode == 0 and "imported 2 pins" in r.stderr, r.stderr)
    out = os.path.join(ctx.scratch, "out.ndjson")
    r = ctx.run("state", "export", "-f", out, "--config", folder)
    expect(r.returncode == 0, r.stderr)
    expect(sorted(json.loads(l)["cid"] for l in open(out)) == sorted(cids), open(out).read())
    # Without --force it still asks (and, with no terminal, refuses): -f is not --force.
    r = ctx.run("state", "import", "-f", pins, "--config", folder, stdin="")
    expect(r.returncode == 1 and "--force" in r.stderr, r.stderr)
    # The file once: -f and an argument together name the argument.
    r = ctx.run("state", "import", "-f", pins, pins + ".2", "--force", "--config", folder)
    expect(r.returncode == 1 and f"'{pins}.2'" in r.stderr, r.stderr)


def test_pin_wait_timeout_and_expire_in_are_checked_before_contacting_the_api(ctx):
    cid, new = make_cids(2)
    for value, why in (("bogus", "--wait-timeout"), ("-5s", "negative")):
        for args in (["pin", "add", cid], ["pin", "rm", cid], ["pin", "update", cid, new]):
            r = ctx.run(*args, "--wait", "--wait-timeout", value, "--host", DEAD_HOST)
            expect(r.returncode == 1, f"{args} {value}: exit {r.returncode}")
            # A transport error would mean the pin was sent before the flag was checked.
            expect(why in r.stderr and "0s or more" in r.stderr and "127.0.0.1" not in r.stderr,
                   f"{args} {value}: {r.stderr}")
    for args in (["pin", "add", cid], ["pin", "update", cid, new]):
        for value in ("soon", "-1h", "0s"):
            r = ctx.run(*args, "--expire-in", value, "--host", DEAD_HOST)
            expect(r.returncode == 1 and "--expire-in" in r.stderr and "127.0.0.1" not in r.stderr,
                   f"{args} {value}: {r.stderr}")
    # A good value gets as far as the (dead) API.
    r = ctx.run("pin", "add", cid, "--wait", "--wait-timeout", "1m30s", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "--wait-timeout" not in r.stderr, r.stderr)


def test_pin_add_from_stdin_refuses_wait_before_reading_or_sending(ctx):
    cid = make_cids(1)[0]
    for extra in (["--wait"], ["--wait", "--wait-timeout", "1m"], ["-w"]):
        r = ctx.run("pin", "add", "-", *extra, "--host", DEAD_HOST, stdin=cid + "\n")
        expect(r.returncode == 1 and "--wait cannot be used with '-'" in r.stderr, f"{extra}: {r.stderr}")
    r = ctx.run("pin", "add", "-", "--wait", "--wait-timeout", "zzz", "--host", DEAD_HOST, stdin=cid + "\n")
    expect(r.returncode == 1 and "--wait-timeout" in r.stderr, r.stderr)
    # Without --wait, '-' still reads and sends (here: to the dead host).
    r = ctx.run("pin", "add", "-", "--host", DEAD_HOST, stdin=cid + "\n")
    expect(r.returncode == 1 and "--wait" not in r.stderr, r.stderr)


def test_status_filter_applies_to_one_cid_as_to_several(ctx):
    with one_daemon(ctx) as cluster:
        d = cluster.daemons[0].start()
        d.wait_ready()
        a, b = make_cids(2, seed=3)  # never pinned: every peer reports them unpinned
        for cids in ([a], [a, b]):
            r = d.cli("status", "--filter", "pin_error", *cids)
            expect(r.returncode == 0 and r.stdout == "", f"{len(cids)} CID(s): {r.stdout}{r.stderr}")
            r = d.cli("status", "--filter", "unpinned", *cids)
            expect(r.returncode == 0, r.stderr)
            expect(all(c in r.stdout for c in cids), f"{len(cids)} CID(s): {r.stdout}")
            expect(len(r.stdout.strip().splitlines()) >= len(cids), r.stdout)
        # Without a filter one CID is still answered.
        r = d.cli("status", a)
        expect(r.returncode == 0 and a in r.stdout, r.stdout + r.stderr)


def test_init_refuses_while_a_daemon_holds_the_folder(ctx):
    with one_daemon(ctx) as cluster:
        d = cluster.daemons[0]
        path = os.path.join(d.folder, "service.json")
        d.start()
        d.wait_ready()
        before = open(path).read()
        r = ctx.run("init", "--force", "--config", d.folder)
        expect(r.returncode == 1 and "daemon is running" in r.stderr and "stop it first" in r.stderr,
               r.stderr)
        expect(open(path).read() == before, "service.json rewritten under a running daemon")
        expect(d.running(), "the daemon stopped")
    # Any holder of the lock (a state tool, too) is respected.
    folder = ctx.folder("held")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    with open(os.path.join(folder, "clusterpin.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = ctx.run("init", "--force", "--config", folder)
        expect(r.returncode == 1 and "clusterpin.lock" in r.stderr, r.stderr)


def test_init_force_keeps_the_identity_and_secret_so_the_peer_keeps_its_state(ctx):
    with one_daemon(ctx) as cluster:
        d = cluster.daemons[0]
        path = os.path.join(d.folder, "service.json")
        old = json.load(open(path))["cluster"]
        d.start()
        d.wait_ready()
        cid = make_cids(1, seed=11)[0]
        expect(d.cli("pin", "add", cid).returncode == 0, "pin add")
        expect(d.stop() == 0, "daemon did not stop cleanly")
        r = ctx.run("init", "--force", "--config", d.folder,
                    "--listen", f"/ip4/127.0.0.1/tcp/{d.p2p_port}", "--api", d.host)
        expect(r.returncode == 0, r.stderr)
        new = json.load(open(path))["cluster"]
        expect(new["id"] == old["id"] and new["private_key"] == old["private_key"],
               f"identity changed: {old['id']} -> {new['id']}")
        expect(new["secret"] == old["secret"], "the cluster secret was replaced")
        expect(old["id"] in r.stdout and "kept" in r.stdout, r.stdout)
        # The peer starts on its old state: not removed, the pin is still there.
        d.start()
        d.wait_ready()
        expect("removed" not in d.log(), d.log()[-2000:])
        expect(cid in d.pin_cids(), "the pin is gone")
        expect(d.stop() == 0, "daemon did not stop cleanly")
        # A secret given explicitly still wins.
        other = "ab" * 32
        r = ctx.run("init", "--force", "--config", d.folder, "--secret", other)
        expect(r.returncode == 0, r.stderr)
        expect(json.load(open(path))["cluster"]["secret"] == other, "--secret ignored")


def test_init_force_without_a_readable_identity_refuses_when_the_data_folder_has_state(ctx):
    folder = ctx.folder("cfg")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    path = os.path.join(folder, "service.json")
    open(path, "w").write("{not json")
    data = ctx.folder("cfg/clusterpin-data")
    open(os.path.join(data, "state.db"), "w").close()
    r = ctx.run("init", "--force", "--config", folder)
    expect(r.returncode == 1 and data in r.stderr and "identity" in r.stderr, r.stderr)
    expect(open(path).read() == "{not json", "service.json rewritten")
    os.remove(os.path.join(data, "state.db"))
    r = ctx.run("init", "--force", "--config", folder)
    expect(r.returncode == 0 and "kept" not in r.stdout, r.stdout + r.stderr)
    expect(json.load(open(path))["cluster"]["id"] in r.stdout, r.stdout)


def test_pin_add_refuses_metadata_without_a_key_value_pair_before_contacting_the_api(ctx):
    cid = make_cids(1)[0]
    for value, why in (("foo", "has no '='"), ("=bar", "empty key")):
        r = ctx.run("pin", "add", cid, "--metadata", "a=b", "--metadata", value, "--host", DEAD_HOST)
        expect(r.returncode == 1 and f'"{value}"' in r.stderr and why in r.stderr
               and "key=value" in r.stderr and "127.0.0.1" not in r.stderr, f"{value}: {r.stderr}")
        r = ctx.run("pin", "add", "-", "--metadata", value, "--host", DEAD_HOST, stdin=cid + "\n")
        expect(r.returncode == 1 and "key=value" in r.stderr and "127.0.0.1" not in r.stderr,
               f"- {value}: {r.stderr}")
    # key= (an empty value) and a value holding '=' are accepted and sent as they are.
    api = FakeApi({f"POST /pins/{cid}": (200, '{"cid": "%s"}' % cid)})
    try:
        r = ctx.run("pin", "add", cid, "--metadata", "empty=", "--metadata", "k=v=w", "--no-status",
                    "--host", api.host)
        expect(r.returncode == 0, r.stderr)
        target = api.requests[-1][0]
        expect("meta-empty=&" in target + "&" and "meta-k=v%3Dw" in target, target)
    finally:
        api.close()


def test_init_refuses_peers_without_a_peer_id_and_writes_nothing(ctx):
    folder = os.path.join(ctx.scratch, "nop2p")
    good = "/ip4/127.0.0.1/tcp/9196/p2p/" + PEER_ID
    for peers in ("/ip4/1.2.3.4/tcp/9096", good + ",/dns4/example.com/tcp/9096"):
        r = ctx.run("init", "--config", folder, "--peers", peers)
        bad = peers.split(",")[-1]
        expect(r.returncode == 1 and f'"{bad}"' in r.stderr and "/p2p/" in r.stderr, f"{peers}: {r.stderr}")
        expect(not os.path.exists(os.path.join(folder, "service.json")), f"{peers}: service.json written")


def test_enc_json_is_honoured_by_sync_peers_rm_and_pin_add_from_stdin(ctx):
    cids = make_cids(3, seed=21)
    api = FakeApi({"POST /pins/sync": (204, ""), f"DELETE /peers/{PEER_ID}": (204, ""),
                   "POST /pins": (200, "[]")})
    try:
        r = ctx.run("sync", "--enc", "json", "--host", api.host)
        expect(r.returncode == 0 and r.stdout == "", f"sync: {r.stdout!r} {r.stderr}")
        r = ctx.run("peers", "rm", PEER_ID, "--enc", "json", "--host", api.host)
        expect(r.returncode == 0 and r.stdout == "", f"peers rm: {r.stdout!r} {r.stderr}")
        r = ctx.run("pin", "add", "-", "--enc", "json", "--host", api.host,
                    stdin="".join(c + "\n" for c in cids))
        expect(r.returncode == 0, r.stderr)
        expect(json.loads(r.stdout) == {"pinned": 3}, repr(r.stdout))
        # Text output is unchanged.
        r = ctx.run("pin", "add", "-", "--host", api.host, stdin=cids[0] + "\n")
        expect(r.returncode == 0 and r.stdout == "pinned 1 CIDs\n", repr(r.stdout))
        r = ctx.run("peers", "rm", PEER_ID, "--host", api.host)
        expect(r.returncode == 0 and r.stdout == f"removed {PEER_ID}\n", repr(r.stdout))
        r = ctx.run("sync", "--host", api.host)
        expect(r.returncode == 0 and r.stdout.startswith("synced"), repr(r.stdout))
    finally:
        api.close()


def test_peers_ls_reports_the_stream_error_trailer(ctx):
    peer = json.dumps({"id": PEER_ID, "peername": "one", "cluster_peers": [PEER_ID],
                       "addresses": [], "ipfs": {"id": "", "addresses": []}})
    api = FakeApi({"GET /peers": (200, peer + "\n", {"X-Stream-Error": "peer two did not answer"})})
    try:
        for enc in ("text", "json"):
            r = ctx.run("peers", "ls", "--enc", enc, "--host", api.host)
            expect(r.returncode == 2 and "peer two did not answer" in r.stderr, f"{enc}: rc={r.returncode} {r.stderr}")
            expect(PEER_ID in r.stdout, f"{enc}: the peer received is not printed: {r.stdout}")
        api.routes["GET /peers"] = (200, peer + "\n", {"X-Stream-Error": ""})
        r = ctx.run("peers", "ls", "--host", api.host)
        expect(r.returncode == 0 and r.stderr == "" and PEER_ID in r.stdout, r.stdout + r.stderr)
    finally:
        api.close()


def test_on_off_options_given_false_are_off(ctx):
    folder = ctx.folder("falseflags")
    r = ctx.run("init", "--config", folder, "--insecure-empty-secret=false")
    expect(r.returncode == 0, r.stderr)
    config = json.load(open(os.path.join(folder, "service.json")))
    expect(len(config["cluster"]["secret"]) == 64, "--insecure-empty-secret=false wrote an empty secret")
    before = open(os.path.join(folder, "service.json")).read()
    r = ctx.run("init", "--config", folder, "--force=false")
    expect(r.returncode == 1 and "already exists" in r.stderr, r.stderr)
    expect(open(os.path.join(folder, "service.json")).read() == before, "--force=false overwrote")
    r = ctx.run("init", "--config", folder, "--force=true")
    expect(r.returncode == 0, r.stderr)
    # A state tool asks (and, with no terminal, refuses) unless --force is on.
    r = ctx.run("state", "import", "--config", folder, "--force=0", stdin="")
    expect(r.returncode == 1 and "--force" in r.stderr, r.stderr)
    r = ctx.run("init", "--config", folder, "--force=maybe")
    expect(r.returncode == 1 and "maybe" in r.stderr and "true or false" in r.stderr, r.stderr)


def test_empty_address_lists_are_refused_not_read_as_none(ctx):
    folder = ctx.folder("emptylists")
    r = ctx.run("init", "--config", folder, "--peers", "")
    expect(r.returncode == 1 and "--peers: no address given" in r.stderr, r.stderr)
    expect(not os.path.exists(os.path.join(folder, "service.json")), "service.json written")
    r = ctx.run("init", "--config", folder, "--peers", ",,")
    expect(r.returncode == 1 and "--peers: no address given" in r.stderr, r.stderr)
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    # An empty --bootstrap (an unset variable) would have founded a new cluster here.
    r = ctx.run("daemon", "--config", folder, "--bootstrap", "")
    expect(r.returncode == 1 and "--bootstrap: no address given" in r.stderr, r.stderr)
    expect(not os.path.exists(os.path.join(folder, "clusterpin-data")), "the daemon started")
    r = ctx.run("state", "export", "--config", "")
    expect(r.returncode == 1 and "--config: the folder is empty" in r.stderr, r.stderr)


def test_init_refuses_addresses_the_daemon_would_refuse_and_writes_nothing(ctx):
    folder = os.path.join(ctx.scratch, "badaddr")
    for flag, value in (("--listen", "/ip4/0.0.0.0/udp/9096"), ("--api", "/ip4/127.0.0.1/udp/9094"),
                        ("--ipfs", "/ip4/127.0.0.1/udp/5001"),
                        ("--peers", "/dns4/example.com/udp/9096/p2p/" + PEER_ID),
                        ("--listen", "/dns4/example.com/tcp/9096")):
        r = ctx.run("init", "--config", folder, flag, value)
        expect(r.returncode == 1 and flag + ":" in r.stderr and value.split("/p2p/")[0] in r.stderr,
               f"{flag} {value}: {r.stderr}")
        expect(not os.path.exists(os.path.join(folder, "service.json")), f"{flag}: service.json written")
    r = ctx.run("init", "--config", folder, "--api", "/dns4/api.example.org/tcp/9094")
    expect(r.returncode == 1 and "--api:" in r.stderr and 'not on the name "api.example.org"' in r.stderr,
           r.stderr)
    expect(not os.path.exists(os.path.join(folder, "service.json")), "--api name: service.json written")
    for flag, value in (("--api", "/ip4/127.0.0.1/tcp/9194"), ("--ipfs", "/unix/run/ipfs.sock"),
                        ("--ipfs", "/dns4/ipfs0/tcp/5001"),
                        ("--peers", "/dns4/cluster1/tcp/9096/p2p/" + PEER_ID)):
        r = ctx.run("init", "--config", ctx.folder("goodaddr" + value.replace("/", "_")), flag, value)
        expect(r.returncode == 0, f"{flag} {value}: {r.stderr}")
    r = ctx.run("init", "--config", ctx.folder("openapi"), "--api", "/ip4/0.0.0.0/tcp/9094")
    expect(r.returncode == 0 and "basic_auth_credentials" in r.stderr, r.stderr)
    r = ctx.run("init", "--config", folder, "--secret", SECRET, "--insecure-empty-secret")
    expect(r.returncode == 1 and "contradict" in r.stderr, r.stderr)
    r = ctx.run("init", "--config", folder, "--peername", "")
    expect(r.returncode == 1 and "--peername" in r.stderr, r.stderr)
    expect(not os.path.exists(os.path.join(folder, "service.json")), "service.json written")


def test_numeric_options_name_the_option_and_what_is_accepted(ctx):
    cid = make_cids(1)[0]
    for args, name, why in ((["--replication", "abc"], "--replication", "not an integer"),
                            (["--rmin=1.5"], "--rmin", "not an integer"),
                            (["--rmax", "-2"], "--rmax", "out of range"),
                            (["-r", "99999999999"], "--replication", "out of range"),
                            (["-t", "-1"], "--timeout", "out of range"),
                            (["--timeout", ""], "--timeout", "not an integer")):
        r = ctx.run("pin", "add", *args, cid, "--host", DEAD_HOST)
        expect(r.returncode == 1 and f"{name}:" in r.stderr and why in r.stderr and "accepted:" in r.stderr
               and "127.0.0.1" not in r.stderr, f"{args}: {r.stderr}")
    # An expiry past what a pin can hold is refused before anything is sent.
    r = ctx.run("pin", "add", cid, "--expire-in", "2500000h", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "--expire-in" in r.stderr and "2262" in r.stderr, r.stderr)
    r = ctx.run("pin", "add", cid, "-r", "-1", "--rmin", "0", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "cannot reach" in r.stderr, r.stderr)


def test_state_import_refuses_a_field_of_the_wrong_type_and_changes_nothing(ctx):
    folder = ctx.folder("strict")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    cid = make_cids(1, seed=5)[0]
    good = os.path.join(ctx.scratch, "good.ndjson")
    with open(good, "w") as f:
        f.write(json.dumps({"cid": cid, "name": "kept", "mode": "direct", "metadata": {"k": "v"},
                            "reference": None, "replication_factor_min": 2,
                            "replication_factor_max": 3}) + "\n")
    expect(ctx.run("state", "import", "--force", "--config", folder, good).returncode == 0, "import")
    for field, value, why in (("mode", "Direct", "recursive, direct"),
                              ("replication_factor_min", "2", "an integer"),
                              ("replication_factor_max", 2.5, "an integer"),
                              ("type", "shardpin", "shard-pin"),
                              ("metadata", {"k": 1}, "strings"),
                              ("allocations", "QmX", "peer ids")):
        bad = os.path.join(ctx.scratch, "bad.ndjson")
        with open(bad, "w") as f:
            f.write(json.dumps({"cid": cid}) + "\n" + json.dumps({"cid": cid, field: value}) + "\n")
        r = ctx.run("state", "import", "--force", "--config", folder, bad)
        expect(r.returncode == 1 and "line 2" in r.stderr and field in r.stderr and why in r.stderr,
               f"{field}: {r.stderr}")
    r = ctx.run("state", "export", "--config", folder)
    pins = [json.loads(line) for line in r.stdout.splitlines()]
    expect(len(pins) == 1 and pins[0]["name"] == "kept" and pins[0]["mode"] == "direct"
           and pins[0]["replication_factor_min"] == 2, r.stdout)
    r = ctx.run("state", "import", "--force", "--config", folder, ctx.scratch)
    expect(r.returncode == 1 and "is a folder" in r.stderr, r.stderr)


def test_pin_ls_filter_is_checked_before_contacting_the_api(ctx):
    for value in ("pinz", "pin,pinz"):
        r = ctx.run("pin", "ls", "--filter", value, "--host", DEAD_HOST)
        expect(r.returncode == 1 and '"pinz"' in r.stderr and "shard-pin" in r.stderr
               and "127.0.0.1" not in r.stderr, f"{value}: {r.stderr}")
    r = ctx.run("pin", "ls", "--filter", "pin,meta-pin", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "cannot reach" in r.stderr, r.stderr)


def test_pin_add_from_stdin_sends_cids_without_the_blanks_around_them(ctx):
    cids = make_cids(2, seed=23)
    api = FakeApi({"POST /pins": (200, "[]")})
    try:
        r = ctx.run("pin", "add", "-", "--host", api.host,
                    stdin=f"  {cids[0]}\t\r\n\t\n{cids[1]} \n")
        expect(r.returncode == 0 and r.stdout == "pinned 2 CIDs\n", r.stdout + r.stderr)
        expect([body for _, body in api.requests] == [f"{cids[0]}\n{cids[1]}\n"], str(api.requests))
    finally:
        api.close()


def edit_config(folder, edit):
    path = os.path.join(folder, "service.json")
    cfg = json.load(open(path))
    edit(cfg)
    json.dump(cfg, open(path, "w"))


def test_daemon_refuses_an_ipfs_address_it_could_never_use_before_starting(ctx):
    folder = ctx.folder("badipfs")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    edit_config(folder, lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(
        node_multiaddress="/ip4/127.0.0.1/udp/5001"))
    r = ctx.run("daemon", "--config", folder, timeout=30)
    expect(r.returncode == 1 and "ipfs_connector.ipfshttp.node_multiaddress" in r.stderr
           and "/udp/5001" in r.stderr, r.stderr)
    expect(not os.path.exists(os.path.join(folder, "clusterpin-data")), "the daemon started")


def test_a_relative_data_folder_is_under_the_config_folder_for_every_tool(ctx):
    folder = ctx.folder("relative")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    edit_config(folder, lambda cfg: cfg["consensus"]["raft"].update(data_folder="raftdata"))
    pins = os.path.join(ctx.scratch, "rel.ndjson")
    cid = make_cids(1, seed=31)[0]
    with open(pins, "w") as f:
        f.write(json.dumps({"cid": cid}) + "\n")
    r = ctx.run("state", "import", "--force", "--config", folder, pins)
    expect(r.returncode == 0 and os.path.join(folder, "raftdata") in r.stderr, r.stderr)
    expect(os.path.exists(os.path.join(folder, "raftdata", "state.db")), "not under the config folder")
    expect(not os.path.exists("raftdata"), "created in the working directory")
    r = ctx.run("state", "export", "--config", folder)
    expect(r.returncode == 0 and cid in r.stdout, r.stdout + r.stderr)


def test_version_with_host_asks_that_peer_as_ipfs_cluster_ctl_does(ctx):
    api = FakeApi({"GET /version": (200, '{"version":"9.8.7"}')})
    try:
        r = ctx.run("version", "--host", api.host)
        # The version alone, as ipfs-cluster-ctl version prints it.
        expect(r.returncode == 0 and r.stdout == "9.8.7\n", r.stdout + r.stderr)
        r = ctx.run("version", "--host", api.host, "--enc", "json")
        expect(r.returncode == 0 and json.loads(r.stdout) == {"version": "9.8.7"}, r.stdout + r.stderr)
    finally:
        api.close()
    r = ctx.run("version")
    expect(r.returncode == 0 and re.match(r"^clusterpin \d+\.\d+\.\d+\n$", r.stdout), r.stdout)
    r = ctx.run("version", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "cannot reach" in r.stderr, r.stderr)


PIN_JSON = {"cid": "", "name": "n", "type": "pin", "mode": "recursive", "max_depth": -1,
            "replication_factor_min": 2, "replication_factor_max": 3,
            "allocations": [PEER_ID, "12D3KooWAaaa"], "metadata": {},
            "expire_at": "0001-01-01T00:00:00Z", "timestamp": "2026-11-24T01:29:54Z"}


def test_client_options_before_the_applet_name_are_taken_as_ctl_takes_them(ctx):
    cid = make_cids(1, seed=41)[0]
    pin = json.dumps(dict(PIN_JSON, cid=cid))
    api = FakeApi({"GET /allocations": (200, pin + "\n"), "GET /version": (200, '{"version":"9.8.7"}')})
    try:
        for lead in (["--enc=json", "--host", api.host, "--basic-auth", "u:p"],
                     ["--encoding", "json", f"--host={api.host}", "--force-http", "-t", "5"],
                     ["-l", api.host, "--enc", "json", "--timeout=5", "--force-http=true"]):
            r = ctx.run(*lead, "pin", "ls")
            expect(r.returncode == 0, f"{lead}: {r.stderr}")
            expect(json.loads(r.stdout)["cid"] == cid, f"{lead}: {r.stdout}")
        # --force-http after the applet name too (a no-op: the API is plain HTTP).
        r = ctx.run("pin", "ls", "--force-http", "--host", api.host)
        expect(r.returncode == 0 and cid in r.stdout, r.stdout + r.stderr)
        # One given again after the applet name wins.
        r = ctx.run("--enc", "json", "--host", DEAD_HOST, "version", "--host", api.host, "--enc", "text")
        expect(r.returncode == 0 and r.stdout == "9.8.7\n", r.stdout + r.stderr)
    finally:
        api.close()
    for args in (["--https", "pin", "ls"], ["pin", "ls", "--https", "--host", DEAD_HOST],
                 ["--https=true", "id"]):
        r = ctx.run(*args)
        expect(r.returncode == 1 and "--https" in r.stderr and "TLS" in r.stderr, f"{args}: {r.stderr}")
    # An applet without client options refuses one given before its name, and writes nothing.
    folder = os.path.join(ctx.scratch, "cfg")
    for args in (["init", "--config", folder], ["state", "export", "--config", folder]):
        r = ctx.run("--host", DEAD_HOST, *args)
        expect(r.returncode == 1 and "takes no client options" in r.stderr and "'--host'" in r.stderr,
               f"{args}: {r.stderr}")
        expect(not os.path.exists(folder), f"{args} ran")
    r = ctx.run("--enc", "json")
    expect(r.returncode == 1 and "no applet" in r.stderr, r.stderr)
    r = ctx.run("help")
    expect("clusterpin [client options] <applet>" in r.stdout, r.stdout)
    r = ctx.run("--host")
    expect(r.returncode == 1 and "--host: no value" in r.stderr, r.stderr)
    r = ctx.run("--frob", "pin", "ls")
    expect(r.returncode == 1 and "'--frob'" in r.stderr and "--host" in r.stderr, r.stderr)


def test_api_errors_are_the_error_object_on_stdout_with_enc_json(ctx):
    cid = make_cids(1, seed=43)[0]
    api = FakeApi({f"GET /allocations/{cid}": (404, '{"code":404,"message":"pin not found"}')})
    try:
        r = ctx.run("pin", "ls", cid, "--enc", "json", "--host", api.host)
        expect(r.returncode == 2, f"exit {r.returncode}")
        expect(json.loads(r.stdout) == {"code": 404, "message": "pin not found"}, repr(r.stdout))
        expect(r.stdout.startswith('{\n    "code": 404'), repr(r.stdout))
        r = ctx.run("--enc=json", "id", "--host", api.host)  # a route it does not have
        expect(r.returncode == 2 and json.loads(r.stdout)["message"] == "no route", repr(r.stdout))
        # Text mode is unchanged.
        r = ctx.run("pin", "ls", cid, "--host", api.host)
        expect(r.returncode == 2 and r.stdout == "", repr(r.stdout))
        expect(r.stderr == "An error occurred:\n  Code: 404\n  Message: pin not found\n", repr(r.stderr))
    finally:
        api.close()


def test_state_import_refuses_the_file_given_both_as_argument_and_with_f(ctx):
    folder = ctx.folder("cfg")
    expect(ctx.run("init", "--config", folder).returncode == 0, "init")
    cids = make_cids(2, seed=45)
    files = []
    for i, cid in enumerate(cids):
        path = os.path.join(ctx.scratch, f"p{i}.ndjson")
        open(path, "w").write(json.dumps({"cid": cid}) + "\n")
        files.append(path)
    for args in ([files[0], "-f", files[1]], ["-f", files[0], "--file", files[1]]):
        r = ctx.run("state", "import", "--force", *args, "--config", folder)
        expect(r.returncode == 1 and f"'{files[0]}'" in r.stderr and f"'{files[1]}'" in r.stderr
               and "once" in r.stderr, f"{args}: {r.stderr}")
        expect(not os.path.exists(os.path.join(folder, "clusterpin-data", "state.db")), f"{args}: imported")


def test_pin_ls_filter_is_checked_with_cids_too_and_may_not_be_empty(ctx):
    cid = make_cids(1, seed=47)[0]
    for value, why in (("bogus", '"bogus" is not a pin type'), ("", "no pin type given"),
                       (",", "empty name"), ("pin,", "empty name")):
        for cids in ([], [cid]):
            r = ctx.run("pin", "ls", "--filter", value, *cids, "--host", DEAD_HOST)
            expect(r.returncode == 1 and why in r.stderr and "shard-pin" in r.stderr
                   and "127.0.0.1" not in r.stderr and r.stdout == "", f"{value!r} {cids}: {r.stderr}")
    for value, why in (("", "no status given"), (",", '"" is not a status'), ("pinned,", '"" is not')):
        r = ctx.run("status", "--filter", value, "--host", DEAD_HOST)
        expect(r.returncode == 1 and why in r.stderr and "pin_error" in r.stderr
               and "127.0.0.1" not in r.stderr, f"{value!r}: {r.stderr}")
    # A good filter with a CID gets as far as the (dead) API.
    r = ctx.run("pin", "ls", "--filter", "pin", cid, "--host", DEAD_HOST)
    expect(r.returncode == 1 and "cannot reach" in r.stderr, r.stderr)


def test_pin_wait_limit_needs_wait(ctx):
    cid, new = make_cids(2, seed=49)
    for args in (["pin", "add", cid], ["pin", "rm", cid], ["pin", "update", cid, new],
                 ["pin", "add", cid, "--wait=false"]):
        for limit in (["--wait-limit", "2"], ["--wl=2"]):
            r = ctx.run(*args, *limit, "--host", DEAD_HOST)
            expect(r.returncode == 1 and "--wait-limit needs --wait" in r.stderr
                   and "127.0.0.1" not in r.stderr, f"{args} {limit}: {r.stderr}")
    r = ctx.run("pin", "add", cid, "--wait", "--wl", "2", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "cannot reach" in r.stderr, r.stderr)


def test_pin_options_take_ipfs_cluster_ctl_names(ctx):
    cid = make_cids(1, seed=51)[0]
    api = FakeApi({f"POST /pins/{cid}": (200, json.dumps(dict(PIN_JSON, cid=cid))),
                   f"DELETE /pins/{cid}": (200, json.dumps(dict(PIN_JSON, cid=cid)))})
    try:
        r = ctx.run("pin", "add", cid, "--replication-min", "2", "--replication-max=3",
                    "--allocs", PEER_ID, "--ns", "--wt", "1m", "--host", api.host)
        expect(r.returncode == 0, r.stderr)
        target = api.requests[-1][0]
        for part in ("replication-min=2", "replication-max=3", f"user-allocations={PEER_ID}"):
            expect(part in target, f"{part} not in {target}")
        r = ctx.run("pin", "rm", cid, "--ns", "--wt=5s", "--host", api.host)
        expect(r.returncode == 0, r.stderr)
    finally:
        api.close()
    r = ctx.run("pin", "add", cid, "--replication-min", "x", "--host", DEAD_HOST)
    expect(r.returncode == 1 and "--rmin" in r.stderr and "not an integer" in r.stderr, r.stderr)
    r = ctx.run("pin", "add", "--help")
    for name in ("--replication-min", "--replication-max", "--allocs", "--ns", "--wt", "--wl"):
        expect(name in r.stdout, f"{name} not in pin add --help")


def test_pin_ls_text_line_is_ipfs_cluster_ctls(ctx):
    cid = make_cids(1, seed=53)[0]
    direct = dict(PIN_JSON, cid=cid, mode="direct", max_depth=0, metadata={"k": "v"},
                  expire_at="2027-01-02T03:04:05Z", timestamp="0001-01-01T00:00:00Z")
    api = FakeApi({f"GET /allocations/{cid}": (200, json.dumps(dict(PIN_JSON, cid=cid))),
                   "GET /allocations": (200, json.dumps(direct) + "\n")})
    try:
        r = ctx.run("pin", "ls", cid, "--host", api.host)
        expect(r.returncode == 0, r.stderr)
        expect(r.stdout == f"{cid} | n | PIN | Repl. Factor: 2--3 | Allocations: [12D3KooWAaaa {PEER_ID}] | "
               "Recursive | Metadata: no | Exp: \u221e | Added: 2026-11-24 01:29:54\n", r.stdout)
        r = ctx.run("pin", "ls", "--host", api.host)
        expect(r.returncode == 0, r.stderr)
        expect(r.stdout == f"{cid} | n | PIN-DIRECT | Repl. Factor: 2--3 | Allocations: [12D3KooWAaaa {PEER_ID}] | "
               "Direct | Metadata: yes | Exp: 2027-01-02 03:04:05 | Added: unknown\n", r.stdout)
    finally:
        api.close()


def test_out_of_range_numbers_name_the_range(ctx):
    cid = make_cids(1)[0]
    for args, limit in ((["id", "-t", "200000000"], "100000000"),
                        (["pin", "add", cid, "--rmin", "2147483648"], "2147483647"),
                        (["pin", "add", cid, "--wait", "--wait-limit", "3000000000"], "2147483647")):
        r = ctx.run(*args, "--host", DEAD_HOST)
        expect(r.returncode == 1 and "out of range" in r.stderr and limit in r.stderr, f"{args}: {r.stderr}")


def test_on_off_options_given_a_bad_value_are_named(ctx):
    cid = make_cids(1)[0]
    for args, name in ((["pin", "add", cid, "--wait=maybe"], "--wait"),
                       (["status", "--local=2"], "--local"),
                       (["daemon", "--leave=maybe"], "--leave")):
        r = ctx.run(*args, "--host", DEAD_HOST) if args[0] != "daemon" else ctx.run(*args)
        expect(r.returncode == 1 and f"{name}:" in r.stderr and "true or false" in r.stderr,
               f"{args}: {r.stderr}")



def test_host_takes_one_address_and_its_error_names_the_forms(ctx):
    r = ctx.run("pin", "ls", "--host", "/ip4/127.0.0.1/tcp/9094,/ip4/127.0.0.1/tcp/9095")
    expect(r.returncode == 1 and "is a list" in r.stderr and "one address" in r.stderr, r.stderr)
    r = ctx.run("id", "--host", "/ip4/127.0.0.1/udp/9094")
    expect(r.returncode == 1 and "unsupported multiaddr" in r.stderr and "unix:<path>" in r.stderr
           and "/unix/<path>" in r.stderr, r.stderr)


def test_health_metrics_says_when_there_is_no_such_metric(ctx):
    api = FakeApi({"GET /monitor/metrics": (200, '["freespace", "ping", "tag:a/b"]'),
                   "GET /monitor/metrics/nosuch": (200, "[]"),
                   "GET /monitor/metrics/tag%3Aa%2Fb": (200, "[]"),
                   "GET /monitor/metrics/ping": (200, "[]")})
    try:
        for name in ("nosuch", "a/b"):
            r = ctx.run("health", "metrics", name, "--host", api.host)
            expect(r.returncode == 1 and f'no metric named "{name}"' in r.stderr
                   and "freespace, ping, tag:a/b" in r.stderr and r.stdout == "", f"{name}: {r.stdout}{r.stderr}")
        # A known metric with no valid value right now is not an error; its name is one path
        # segment, percent-encoded.
        for name in ("ping", "tag:a/b"):
            r = ctx.run("health", "metrics", name, "--host", api.host)
            expect(r.returncode == 0 and r.stdout == "", f"{name}: {r.stdout}{r.stderr}")
        expect(any(t == "/monitor/metrics/tag%3Aa%2Fb" for t, _ in api.requests), str(api.requests))
    finally:
        api.close()


def test_health_graph_with_enc_json_writes_the_file_and_refuses_a_format(ctx):
    graph = '{"cluster_links": {}, "ipfs_links": {}}'
    api = FakeApi({"GET /health/graph": (200, graph)})
    try:
        out = os.path.join(ctx.scratch, "graph.json")
        r = ctx.run("health", "graph", "--enc", "json", "-f", out, "--host", api.host)
        expect(r.returncode == 0 and r.stdout == "", r.stdout + r.stderr)
        expect(json.load(open(out)) == json.loads(graph), open(out).read())
        r = ctx.run("health", "graph", "--enc", "json", "--format", "svg", "--host", api.host)
        expect(r.returncode == 1 and "--format" in r.stderr and "--enc json" in r.stderr, r.stderr)
    finally:
        api.close()


def test_init_names_cluster_secret_when_the_bad_secret_came_from_it(ctx):
    folder = os.path.join(ctx.scratch, "envsecret")
    for value, why in (("", "empty"), ("zz", "64 hex")):
        r = ctx.run("init", "--config", folder, env={"CLUSTER_SECRET": value})
        expect(r.returncode == 1 and "$CLUSTER_SECRET" in r.stderr and why in r.stderr, f"{value!r}: {r.stderr}")
        expect(not os.path.exists(os.path.join(folder, "service.json")), "service.json written")
    r = ctx.run("init", "--config", folder, "--secret", "zz")
    expect(r.returncode == 1 and "--secret" in r.stderr and "$CLUSTER_SECRET" not in r.stderr, r.stderr)


def test_init_refuses_listen_port_0(ctx):
    folder = os.path.join(ctx.scratch, "port0")
    r = ctx.run("init", "--config", folder, "--listen", "/ip4/127.0.0.1/tcp/0")
    expect(r.returncode == 1 and "--listen" in r.stderr and "port 0" in r.stderr, r.stderr)
    expect(not os.path.exists(os.path.join(folder, "service.json")), "service.json written")


def test_pin_add_from_stdin_says_paths_are_arguments_only(ctx):
    cid = make_cids(1, seed=55)[0]
    r = ctx.run("pin", "add", "-", "--host", DEAD_HOST, stdin=f"{cid}\n/ipfs/{cid}/dir\n")
    expect(r.returncode == 1 and "line 2" in r.stderr and "IPFS path" in r.stderr
           and "argument" in r.stderr and "cannot reach" not in r.stderr, r.stderr)



def test_debug_prints_each_request_line_and_status_line_on_stderr(ctx):
    cid = make_cids(1, seed=56)[0]
    pin = json.dumps(dict(PIN_JSON, cid=cid))
    api = FakeApi({"GET /allocations": (200, pin + "\n"), "GET /version": (200, '{"version":"9.8.7"}')})
    try:
        plain = ctx.run("pin", "ls", "--host", api.host)
        expect(plain.returncode == 0 and plain.stderr == "", plain.stdout + plain.stderr)
        # Before the applet name (as ctl takes it), after it, and the short -d: standard output is
        # unchanged, standard error has the request line then the status line.
        for args in (["--debug", "pin", "ls", "--host", api.host, "--basic-auth", "alice:s3cret"],
                     ["pin", "ls", "--debug", "--host", api.host],
                     ["-d", "--host", api.host, "pin", "ls"]):
            r = ctx.run(*args)
            expect(r.returncode == 0 and r.stdout == plain.stdout, f"{args}: {r.stdout}{r.stderr}")
            expect(r.stderr == "> GET /allocations?filter=pin HTTP/1.1\n< HTTP/1.1 200 OK\n",
                   f"{args}: {r.stderr!r}")
            expect("s3cret" not in r.stderr and "Authorization" not in r.stderr, r.stderr)
        # Every request of a command is shown; an API error keeps its own message after the lines.
        r = ctx.run("--debug", "id", "--host", api.host)
        expect(r.returncode == 2, f"exit {r.returncode}: {r.stderr}")
        expect(r.stderr.startswith("> GET /id HTTP/1.1\n< HTTP/1.1 404 Not Found\nAn error occurred:"),
               repr(r.stderr))
        r = ctx.run("version", "--host", api.host, "--debug=false")
        expect(r.returncode == 0 and r.stdout == "9.8.7\n" and r.stderr == "", r.stdout + r.stderr)
    finally:
        api.close()
    # A request that reaches nothing is shown, then the transport error.
    r = ctx.run("--debug", "version", "--host", DEAD_HOST)
    expect(r.returncode == 1 and r.stderr.startswith("> GET /version HTTP/1.1\n")
           and "cannot reach" in r.stderr and "< HTTP" not in r.stderr, r.stderr)


def test_no_check_certificate_is_accepted_and_changes_nothing(ctx):
    cid = make_cids(1, seed=57)[0]
    pin = json.dumps(dict(PIN_JSON, cid=cid))
    api = FakeApi({"GET /allocations": (200, pin + "\n")})
    try:
        plain = ctx.run("pin", "ls", "--host", api.host)
        expect(plain.returncode == 0 and cid in plain.stdout, plain.stdout + plain.stderr)
        for args in (["--no-check-certificate", "pin", "ls", "--host", api.host],
                     ["pin", "ls", "--no-check-certificate=true", "--host", api.host],
                     ["--no-check-certificate", "--force-http", "--host", api.host, "pin", "ls"]):
            r = ctx.run(*args)
            expect(r.returncode == 0 and r.stdout == plain.stdout and r.stderr == "",
                   f"{args}: {r.stdout}{r.stderr}")
    finally:
        api.close()
    # With --https it is still --https that is refused, saying why.
    r = ctx.run("--no-check-certificate", "--https", "pin", "ls")
    expect(r.returncode == 1 and "--https" in r.stderr and "TLS" in r.stderr, r.stderr)
    for name in ("--debug", "--no-check-certificate"):
        expect(name in ctx.run("help").stdout, f"the general help does not list {name}")


def test_secret_is_refused_saying_it_is_for_libp2p_and_what_to_give_instead(ctx):
    api = FakeApi({"GET /version": (200, '{"version":"9.8.7"}')})
    try:
        for args in (["--secret", SECRET, "version", "--host", api.host],
                     [f"--secret={SECRET}", "--host", api.host, "pin", "ls"],
                     ["version", "--host", api.host, "--secret", SECRET],
                     ["pin", "ls", f"--secret={SECRET}", "--host", api.host]):
            r = ctx.run(*args)
            expect(r.returncode == 1 and r.stdout == "", f"{args}: exit {r.returncode}: {r.stdout}")
            for words in ("--secret", "libp2p", "HTTP", "--host", "http_listen_multiaddress"):
                expect(words in r.stderr, f"{args}: the message lacks {words!r}: {r.stderr}")
            expect(len(r.stderr.splitlines()) == 1, f"{args}: not one line: {r.stderr}")
        expect(api.requests == [], f"a refused --secret still contacted the API: {api.requests}")
    finally:
        api.close()
    # init's own --secret (a new peer's cluster secret) is not a client option: still taken.
    folder = ctx.folder("secretinit")
    r = ctx.run("init", "--config", folder, "--secret", SECRET)
    expect(r.returncode == 0, r.stderr)
    expect(json.load(open(os.path.join(folder, "service.json")))["cluster"]["secret"] == SECRET,
           "init --secret did not write the secret")


if __name__ == "__main__":
    run(globals())
