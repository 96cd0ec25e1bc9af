"""Five real clusterpin daemons on 127.0.0.1: pins made on different followers reach every peer,
the cluster keeps committing with two followers SIGKILLed (3 of 5 is a majority), the killed
peers catch up after a restart, and at the end every acknowledged pin is on every live peer.
Also how `pin add -` and `pin add --wait` show progress: on a terminal (a pty) and not in a pipe.
Usage: test_five.py CLUSTERPIN SOURCE_ROOT [--only TEST]"""
import json
import os
import pty
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402
from ipfs import Ipfs, require_ipfs  # noqa: E402


def pin(daemon, cid):
    r = daemon.cli("pin", "add", "--no-status", cid)
    expect(r.returncode == 0, f"pin add {cid} on peer {daemon.index}: {r.stdout} {r.stderr}")
    return cid


def all_live_have(cluster, cids, timeout=60):
    for d in cluster.daemons:
        if d.running():
            wait_until(lambda d=d: set(cids) <= d.pin_cids(), timeout,
                       f"peer {d.index} to list every acknowledged pin")


def test_five_peers_pins_from_followers_survive_two_killed_followers_who_catch_up(ctx):
    with LocalCluster(ctx, 5) as c:
        c.start_all()
        leader = c.leader()
        followers = [d for d in c.daemons if d is not leader]
        expect(len(followers) == 4, "expected four followers")
        status, body = leader.api("GET", "/id")
        expect(len(json.loads(body)["cluster_peers"]) == 5, body)
        # Pins made on different followers (and the leader) appear on all five.
        acknowledged = []
        for i, d in enumerate(followers + [leader]):
            acknowledged += [pin(d, cid) for cid in make_cids(2, seed=100 + i)]
        all_live_have(c, acknowledged)
        # Two followers SIGKILLed: three of five still commit, through the leader and a follower.
        victims, survivors = followers[:2], followers[2:]
        for v in victims:
            v.kill()
        during = [pin(survivors[0], cid) for cid in make_cids(3, seed=110)]
        during += [pin(leader, cid) for cid in make_cids(3, seed=111)]
        r = survivors[1].cli("pin", "add", "-", stdin="\n".join(make_cids(500, seed=112)) + "\n", timeout=120)
        expect(r.returncode == 0 and "pinned 500 CIDs" in r.stdout, r.stdout + r.stderr)
        during += make_cids(500, seed=112)
        acknowledged += during
        # Read-your-writes on the follower that answered the batch.
        expect(set(make_cids(500, seed=112)) <= survivors[1].pin_cids(), "the answering follower misses its pins")
        all_live_have(c, acknowledged)
        for v in victims:
            expect(not v.running(), f"victim {v.index} is still running")
        # Restarted, they catch up with what was committed while they were down.
        for v in victims:
            v.start()
        for v in victims:
            v.wait_ready()
        after = [pin(victims[0], cid) for cid in make_cids(2, seed=113)]
        acknowledged += after
        all_live_have(c, acknowledged)
        expect(all(d.running() for d in c.daemons), "a peer stopped")
        for d in c.daemons:
            expect(set(acknowledged) <= d.pin_cids(), f"peer {d.index} misses acknowledged pins")
        leader_after = c.leader()
        status, body = leader_after.api("GET", "/id")
        expect(len(json.loads(body)["cluster_peers"]) == 5, body)


# --- progress on a terminal, nothing extra in a pipe ---------------------------------------------

def run_in_pty(ctx, args, stdin_text, timeout=120):
    """Runs clusterpin with stdout and stderr on a pty (stdin from a pipe); returns (exit code,
    everything the terminal received)."""
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.pop("CLUSTERPIN_PATH", None)
    proc = subprocess.Popen([ctx.binary, *args], stdin=subprocess.PIPE, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    if stdin_text is not None:
        proc.stdin.write(stdin_text.encode())
    proc.stdin.close()
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the slave side is closed, the process has exited
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    os.close(master)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return code, out.decode(errors="replace")


def visible_lines(screen):
    """What a terminal shows after `screen`: carriage returns go back to the line start, ESC [K
    erases to the end of the line, newlines end lines (a pty writes "\r\n")."""
    lines, line, col, i = [], [], 0, 0
    while i < len(screen):
        ch = screen[i]
        if screen.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    if line:
        lines.append("".join(line))
    return [x.rstrip() for x in lines if x.strip()]


def test_pin_add_from_stdin_shows_progress_on_a_terminal_and_nothing_extra_in_a_pipe(ctx):
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0].start()
        d.wait_ready()
        cids = make_cids(25000, seed=120)
        code, screen = run_in_pty(ctx, ["pin", "add", "-", "--host", d.host], "\n".join(cids) + "\n")
        expect(code == 0, screen)
        # One progress line rewritten in place per batch of 10,000, then the final count.
        expect("\rpinned 10000 CIDs" in screen and "\rpinned 20000 CIDs" in screen, repr(screen[:500]))
        # What stays on the screen is the count alone: the progress line is erased, not doubled.
        expect(visible_lines(screen) == ["pinned 25000 CIDs"], f"{visible_lines(screen)} from {screen[-300:]!r}")
        # In a pipe: only the final count on stdout, nothing on stderr.
        more = make_cids(25000, seed=121)
        r = d.cli("pin", "add", "-", stdin="\n".join(more) + "\n", timeout=120)
        expect(r.returncode == 0, r.stderr)
        expect(r.stdout == "pinned 25000 CIDs\n", repr(r.stdout))
        expect(r.stderr == "", f"stderr in a pipe: {r.stderr!r}")
        expect(set(cids + more) <= d.pin_cids(), "not every CID was pinned")


def test_pin_add_wait_shows_progress_on_a_terminal_and_nothing_extra_in_a_pipe(ctx):
    require_ipfs(ctx.source_root)
    node = Ipfs(ctx.source_root, ctx.folder("ipfs")).start()
    try:
        with LocalCluster(ctx, 1, peers=False) as c:
            d = c.daemons[0]
            c.edit(d, lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(node_multiaddress=node.maddr))
            d.start()
            d.wait_ready()
            first, second = node.add(os.urandom(50_000)), node.add(os.urandom(50_000))
            code, screen = run_in_pty(ctx, ["pin", "add", "--wait", "--wait-timeout", "60s",
                                            "--host", d.host, first], None)
            expect(code == 0, screen)
            expect(f"\r{first}: " in screen and " of 1 peers pinned" in screen, repr(screen))
            shown = visible_lines(screen)
            expect(len(shown) == 2 and shown[0].startswith(first + " | "), f"{shown} from {screen!r}")
            expect(shown[1] == f"{first}: 1 of 1 peers pinned", f"{shown} from {screen!r}")
            expect(node.pinned(first), "--wait returned before IPFS pinned it")
            r = d.cli("pin", "add", "--wait", "--wait-timeout", "60s", second)
            expect(r.returncode == 0, r.stdout + r.stderr)
            expect(r.stderr == "", f"stderr in a pipe: {r.stderr!r}")
            lines = r.stdout.splitlines()
            expect(len(lines) == 1 and lines[0].startswith(second + " | "), repr(r.stdout))
            expect(node.pinned(second), "--wait returned before IPFS pinned it")
    finally:
        node.stop()


if __name__ == "__main__":
    run(globals())
