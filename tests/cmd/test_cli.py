"""The binary's shape (busybox dispatch, help, errors) and `clusterpin init`, run as a user would."""
import json
import os
import re
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import expect, run  # noqa: E402

APPLETS = ["init", "daemon", "id", "peers", "pin", "status", "sync", "recover", "health",
           "state", "version", "help"]
SECRET = "2588b80d5cb05374fa142aed6cbb047d1f4ef8ef15e37eba68c65b9d30df67ed"


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
    r = ctx.run("init", "--config", folder, "--force")
    expect(r.returncode == 0 and open(path).read() != before, "--force did not overwrite")


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


if __name__ == "__main__":
    run(globals())
