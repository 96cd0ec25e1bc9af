"""Pins really land in IPFS: clusterpin peers, each beside its own real IPFS daemon (js-ipfs from
the npm lock file, started by scripts/ipfs-node on loopback ports). Every check of what IPFS
has pinned asks that IPFS daemon directly."""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402
from ipfs import RecordingProxy, start_nodes  # noqa: E402


def cluster_with_ipfs(ctx, n, announce=None):
    nodes = start_nodes(ctx, n, announce=announce)
    c = LocalCluster(ctx, n)
    for d, node in zip(c.daemons, nodes):
        c.edit(d, lambda cfg, node=node: cfg["ipfs_connector"]["ipfshttp"].update(node_multiaddress=node.maddr))
        c.edit(d, lambda cfg: cfg["cluster"].update(ipfs_sync_interval="2s"))
    return c, nodes


def status_of(daemon, cid):
    status, body = daemon.api("GET", f"/pins/{cid}")
    expect(status == 200, body)
    return {peer: info["status"] for peer, info in json.loads(body)["peer_map"].items()}


def allocated(daemon, cid):
    status, body = daemon.api("GET", f"/allocations/{cid}")
    expect(status == 200, body)
    return json.loads(body)["allocations"]


def test_pins_land_on_the_allocated_peers_ipfs_and_unpin_removes_them(ctx):
    c, nodes = cluster_with_ipfs(ctx, 3)
    try:
        with c:
            c.start_all()
            cid = nodes[0].add(os.urandom(200_000))
            r = c.daemons[1].cli("pin", "add", "-r", "2", cid)
            expect(r.returncode == 0, r.stderr)
            allocs = allocated(c.daemons[1], cid)  # the peer that answered has applied it
            expect(len(allocs) == 2, str(allocs))
            holders = [nodes[d.index] for d in c.daemons if d.id in allocs]
            for node in holders:
                wait_until(lambda node=node: node.pinned(cid), 60, "the allocated IPFS daemons to pin it")
            wait_until(lambda: list(status_of(c.daemons[2], cid).values()).count("pinned") == 2, 30,
                       "status to show two pinned copies")
            others = [nodes[d.index] for d in c.daemons if d.id not in allocs]
            expect(not any(node.pinned(cid) for node in others), "pinned on a peer it was not allocated to")
            r = c.daemons[0].cli("pin", "rm", cid)
            expect(r.returncode == 0, r.stderr)
            for node in holders:
                wait_until(lambda node=node: not node.pinned(cid), 60, "the unpin to reach IPFS")
    finally:
        for node in nodes:
            node.stop()


def test_unpin_disable_keeps_what_ipfs_holds_and_reports_unpin_error(ctx):
    # ipfs_connector.ipfshttp.unpin_disable (IPFS Cluster's): the cluster forgets the pin, but
    # this peer never asks its IPFS to unpin, and says so in the CID's status.
    c, nodes = cluster_with_ipfs(ctx, 1)
    c.edit(c.daemons[0], lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(unpin_disable=True))
    try:
        with c:
            c.start_all()
            d = c.daemons[0]
            cid = pinned_through(d, nodes[0])
            expect(nodes[0].pinned(cid), "not pinned in IPFS")
            r = d.cli("pin", "rm", cid)
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: status_of(d, cid)[d.id] == "unpin_error", 30, "unpin_error")
            error = json.loads(d.api("GET", f"/pins/{cid}")[1])["peer_map"][d.id]["error"]
            expect("unpin_disable" in error, error)
            expect(nodes[0].pinned(cid), "IPFS unpinned it although unpin_disable is set")
    finally:
        for node in nodes:
            node.stop()


def pinned_through(d, node):
    """A new CID added to `node` (unpinned there), pinned through peer `d` with --wait."""
    cid = node.add(os.urandom(50_000))
    r = d.cli("pin", "add", "--wait", cid)
    expect(r.returncode == 0, r.stderr)
    return cid


def unpin_through_the_fault_then_restart(d, node, cid):
    """`pin rm` on a peer started with the unpin-before-tracker-commit fault: the peer ends
    (exit 86, as a kill) right after state.db committed the unpin and before IPFS was asked;
    restarted, it must unpin the CID in IPFS and report it unpinned."""
    d.cli("pin", "rm", cid)
    wait_until(lambda: d.proc.poll() is not None, 20, "the fault hook to end the peer")
    expect(d.proc.returncode == 86, f"exit {d.proc.returncode}:\n{d.log()[-1500:]}")
    expect(node.pinned(cid), "the unpin reached IPFS before the peer ended")
    d.start()
    d.wait_ready()
    wait_until(lambda: not node.pinned(cid), 60, "the unpin to reach IPFS after the restart")
    wait_until(lambda: status_of(d, cid)[d.id] == "unpinned", 30, "status unpinned")


def test_an_unpin_state_db_committed_before_tracker_db_recorded_the_pin_still_reaches_ipfs(ctx):
    # state.db commits applied entries every tick (100 ms), tracker.db its records every half
    # second: a peer killed in between, after an unpin of a CID whose pin/add tracker.db had not
    # recorded yet, must still unpin it at its restart. The fault scenario holds tracker.db's
    # commits back and ends the peer (exit 86, as a kill) right after state.db committed the unpin.
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d = c.daemons[0]
            d.start(env={"CLUSTERPIN_FAULT": "unpin-before-tracker-commit"})
            d.wait_ready()
            cid = pinned_through(d, nodes[0])
            expect(nodes[0].pinned(cid), "not pinned in IPFS")
            unpin_through_the_fault_then_restart(d, nodes[0], cid)
            expect("that tracker.db had not recorded when this peer last stopped" in d.log(), d.log()[-1500:])
            # Once tracker.db recorded the unpin, state.db no longer keeps it.
            path = os.path.join(d.folder, "clusterpin-data", "state.db")

            def local_unpins():
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
                try:
                    return db.execute("SELECT count(*) FROM local_unpins").fetchone()[0]
                finally:
                    db.close()
            wait_until(lambda: local_unpins() == 0, 30, "the local unpin to be forgotten")
    finally:
        for node in nodes:
            node.stop()


def test_an_unpin_after_a_recover_that_tracker_db_had_not_recorded_still_reaches_ipfs(ctx):
    # tracker.db's committed record says unexpectedly_unpinned (IPFS lost the pin behind the
    # cluster's back); a recover pins it again, but the peer is killed after an unpin that
    # state.db committed and before tracker.db recorded the recover's pin/add. The restart
    # trusted the old record ("nothing pinned here") and forgot the CID while IPFS held it.
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d = c.daemons[0]
            c.start_all()
            cid = pinned_through(d, nodes[0])
            status, text = nodes[0].call(f"pin/rm?arg={cid}")
            expect(status == 200, text)
            r = d.cli("sync")
            expect(r.returncode == 0, r.stdout + r.stderr)
            wait_until(lambda: status_of(d, cid)[d.id] == "unexpectedly_unpinned", 30,
                       "status unexpectedly_unpinned")
            d.stop()  # a clean stop: tracker.db commits the unexpectedly_unpinned record
            d.start(env={"CLUSTERPIN_FAULT": "unpin-before-tracker-commit"})
            d.wait_ready()
            r = d.cli("recover", cid)
            expect(r.returncode == 0, r.stdout + r.stderr)
            wait_until(lambda: nodes[0].pinned(cid), 60, "recover to pin it again in IPFS")
            unpin_through_the_fault_then_restart(d, nodes[0], cid)
    finally:
        for node in nodes:
            node.stop()


def test_a_pin_again_that_tracker_db_had_not_recorded_before_a_kill_reaches_ipfs_at_the_restart(ctx):
    # state.db commits applied entries every tick, tracker.db its records every half second: a
    # kill in between keeps the pinset's newest changes and loses the tracker's. Here tracker.db
    # still says "pinned" from before an unpin whose pin/rm ran; the CID was pinned again while
    # IPFS was down, then the peer was killed. The old record was trusted at the restart: the
    # CID was reported pinned and never pinned again. The fault scenario holds every tracker.db
    # commit of the second run back.
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d = c.daemons[0]
            c.start_all()
            cid = pinned_through(d, nodes[0])
            d.stop()  # a clean stop: tracker.db records the pin as pinned
            # No sync with IPFS in the second run: a sync reads every record, committing the
            # buffered ones first, which would close the window the fault holds open.
            c.edit(d, lambda cfg: cfg["cluster"].update(ipfs_sync_interval="1h"))
            d.start(env={"CLUSTERPIN_FAULT": "tracker-commits-held"})
            d.wait_ready()
            r = d.cli("pin", "rm", cid)
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: not nodes[0].pinned(cid), 30, "the unpin to reach IPFS")
            nodes[0].stop()
            r = d.cli("pin", "add", cid)
            expect(r.returncode == 0, r.stderr)
            time.sleep(1)  # state.db commits the applied pin within a tick
            d.kill()
            nodes[0].start()
            d.start()
            d.wait_ready()
            wait_until(lambda: nodes[0].pinned(cid), 60, "the pin to reach IPFS after the restart")
            wait_until(lambda: status_of(d, cid)[d.id] == "pinned", 30, "status pinned")
            expect("checked with IPFS again" in d.log(), d.log()[-1500:])
    finally:
        for node in nodes:
            node.stop()


def test_ipfs_gc_collects_garbage_on_every_peers_ipfs_and_names_a_peer_whose_ipfs_fails(ctx):
    c, nodes = cluster_with_ipfs(ctx, 2)
    try:
        with c:
            c.start_all()
            a, b = c.daemons
            kept = nodes[0].add(os.urandom(30_000))
            r = a.cli("pin", "add", "--wait", kept)
            expect(r.returncode == 0, r.stderr)
            # Added, never pinned; one raw block each, named as repo/gc names removed blocks.
            garbage = [nodes[i].add(os.urandom(20_000),
                                    query="pin=false&cid-version=1&raw-leaves=true&cid-base=base32")
                       for i in (0, 1)]
            r = a.cli("ipfs", "gc")
            expect(r.returncode == 0, r.stdout + r.stderr)
            for d, cid in zip(c.daemons, garbage):
                # each peer (its peername), then the CIDs its own IPFS removed
                section = r.stdout.split(d.folder.split(os.sep)[-1] + "\n", 1)[-1].split("\n\n")[0]
                expect(f"    - {cid}" in section, f"{cid} not removed by {d.id}'s IPFS:\n{r.stdout}")
            expect(kept not in r.stdout and nodes[0].pinned(kept), "a pinned CID was collected")
            # IPFS Cluster's GlobalRepoGC; --local asks the contacted peer's IPFS only.
            r = b.cli("ipfs", "gc", "--local", "--enc", "json")
            expect(r.returncode == 0, r.stdout + r.stderr)
            doc = json.loads(r.stdout)
            expect(list(doc["peer_map"]) == [b.id] and doc["peer_map"][b.id]["peer"] == b.id
                   and isinstance(doc["peer_map"][b.id]["keys"], list), r.stdout)
            nodes[1].stop()
            r = a.cli("ipfs", "gc")
            expect(r.returncode == 2 and f"{b.id}:" in r.stderr and "| ERROR:" in r.stdout, r.stdout + r.stderr)
    finally:
        for node in nodes:
            node.stop()


def test_unpinned_behind_the_clusters_back_is_reported_and_recovered(ctx):
    c, nodes = cluster_with_ipfs(ctx, 2)
    try:
        with c:
            c.start_all()
            cid = nodes[0].add(os.urandom(50_000))
            r = c.daemons[0].cli("pin", "add", cid)
            expect(r.returncode == 0, r.stderr)
            for node in nodes:
                wait_until(lambda node=node: node.pinned(cid), 60, "every IPFS daemon to pin it")
            status, text = nodes[1].call(f"pin/rm?arg={cid}")
            expect(status == 200, text)
            r = c.daemons[0].cli("sync")
            expect(r.returncode == 0, r.stdout + r.stderr)
            wait_until(lambda: status_of(c.daemons[0], cid)[c.daemons[1].id] == "unexpectedly_unpinned", 30,
                       "status unexpectedly_unpinned")
            r = c.daemons[0].cli("status", cid)
            expect("UNEXPECTEDLY_UNPINNED" in r.stdout, r.stdout)
            r = c.daemons[0].cli("recover", cid)
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: nodes[1].pinned(cid), 60, "recover to pin it again in IPFS")
            wait_until(lambda: set(status_of(c.daemons[0], cid).values()) == {"pinned"}, 30, "all pinned")
    finally:
        for node in nodes:
            node.stop()


def test_a_sync_during_which_the_clock_stepped_back_judges_nothing(ctx):
    # Statuses are dated by the wall clock and a sync judges only those dated before its
    # listing began; with the clock stepped back meanwhile (the fault moves it an hour back
    # between the listing's start and end) that test means nothing, so the sync refuses.
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d = c.daemons[0]
            d.start(env={"CLUSTERPIN_FAULT": "sync-clock-steps-back"})
            d.wait_ready()
            cid = nodes[0].add(os.urandom(20_000))
            r = d.cli("pin", "add", cid)
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: status_of(d, cid)[d.id] == "pinned", 60, "the pin to settle")
            status, text = nodes[0].call(f"pin/rm?arg={cid}")
            expect(status == 200, text)
            r = d.cli("sync")
            expect(r.returncode == 2 and "clock stepped back by 3600" in r.stderr, r.stdout + r.stderr)
            # The periodic syncs (every 2 s here) refuse as well: nothing is judged.
            time.sleep(5)
            expect(status_of(d, cid)[d.id] == "pinned", str(status_of(d, cid)))
            expect("clock stepped back by 3600" in d.log(), "the periodic sync's refusal is not logged")
    finally:
        for node in nodes:
            node.stop()


def test_ipfs_down_gives_pin_error_and_pins_resume_when_it_is_back(ctx):
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            c.start_all()
            d = c.daemons[0]
            first = nodes[0].add(os.urandom(10_000))
            second = nodes[0].add(os.urandom(10_000))
            nodes[0].stop()
            r = d.cli("pin", "add", first)
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: status_of(d, first)[d.id] == "pin_error", 30, "pin_error while IPFS is down")
            status, body = d.api("GET", f"/pins/{first}")
            error = json.loads(body)["peer_map"][d.id]["error"]
            expect("IPFS daemon unreachable at " + nodes[0].maddr in error, error)
            status, _ = d.api("GET", "/id")
            expect(status == 200, "the API stopped answering while IPFS was down")
            r = d.cli("pin", "add", second)
            expect(r.returncode == 0, r.stderr)
            nodes[0].start()
            for cid in (first, second):
                wait_until(lambda cid=cid: nodes[0].pinned(cid), 120, "pending pins to land without anyone acting")
    finally:
        for node in nodes:
            node.stop()


def test_new_pins_past_a_full_queue_wait_as_pin_queued_and_all_get_pinned(ctx):
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d = c.daemons[0]
            # A queue of 3: most of the 40 new pins cannot be held; they wait in tracker.db's
            # waiting list and are queued as the queue drains (not by the 5-minute
            # state_sync_interval reconcile).
            c.edit(d, lambda cfg: cfg["pin_tracker"]["stateless"].update(max_pin_queue_size=3))
            c.start_all()
            cids = [nodes[0].add(os.urandom(2_000)) for _ in range(40)]
            r = d.cli("pin", "add", "-", stdin="\n".join(cids) + "\n")
            expect(r.returncode == 0, r.stderr)
            status, body = d.api("GET", "/pins?local=true")
            expect(status == 200, body)
            seen = [json.loads(line)["peer_map"][d.id]["status"] for line in body.splitlines() if line]
            expect(len(seen) == 40, f"{len(seen)} statuses")
            expect(set(seen) <= {"pin_queued", "pinning", "pinned"}, f"statuses right after: {sorted(set(seen))}")
            wait_until(lambda: all(nodes[0].pinned(cid) for cid in cids), 120,
                       "every pin to land in IPFS without anyone acting")
            wait_until(lambda: all(s == "pinned" for s in (status_of(d, cid)[d.id] for cid in cids)), 30,
                       "every status to say pinned")
    finally:
        for node in nodes:
            node.stop()


def test_new_pins_due_together_share_pin_add_calls_and_a_failed_call_is_retried_per_cid(ctx):
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c, RecordingProxy(nodes[0]) as proxy:
            d = c.daemons[0]
            c.edit(d, lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(
                node_multiaddress=proxy.maddr, pin_timeout="3s"))
            c.start_all()
            cids = [nodes[0].add(os.urandom(2_000)) for _ in range(30)]
            missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"  # nobody has it
            # New pins are handed out in the order they came, concurrent_pins (10) at a time: the
            # missing CID rides in the second pin/add, after one that succeeds.
            r = d.cli("pin", "add", "-", stdin="\n".join(cids[:15] + [missing] + cids[15:]) + "\n")
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: all(nodes[0].pinned(cid) for cid in cids), 120,
                       "every CID IPFS has to be pinned there")
            wait_until(lambda: all(status_of(d, cid)[d.id] == "pinned" for cid in cids), 30,
                       "every status of those to say pinned")
            wait_until(lambda: status_of(d, missing)[d.id] == "pin_error", 60,
                       "the CID nobody has to end in pin_error")
            adds = [q.get("arg", []) for q in proxy.recorded("pin/add")]
            expect(any(len(args) > 1 for args in adds), f"no pin/add carried several CIDs: {adds}")
            expect(len(adds) < len(cids), f"{len(adds)} pin/add calls for {len(cids)} new pins")
            # The call that carried the missing CID made no progress and failed as a whole: each
            # CID it carried was asked again on its own (pin/ls first, then pin/add if needed).
            failed = next((args for args in adds if missing in args and len(args) > 1), None)
            expect(failed is not None, "the missing CID was never asked together with others (the "
                   f"first call took over 1 s, so new pins went one per call): {adds}")
            alone = {q["arg"][0] for q in proxy.recorded("pin/ls") if len(q.get("arg", [])) == 1}
            alone |= {args[0] for args in adds if len(args) == 1}
            expect(set(failed) <= alone, f"not asked again alone: {set(failed) - alone}")
            expect(not nodes[0].pinned(missing), "the missing CID got pinned")
    finally:
        for node in nodes:
            node.stop()


def test_imported_pins_ipfs_already_holds_are_recorded_from_one_listing(ctx):
    # A migration: the IPFS daemon already pins what the imported state lists. Past the first
    # 1,000 untracked pins (each checked with pin/add) the peer lists IPFS's pins once and records
    # the ones it holds as pinned without a call each; the rest still get their pin/add. IPFS is
    # down when the peer starts: the listing is tried again until it answers.
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d, node = c.daemons[0], nodes[0]
            added = node.add_folder({f"f{i}": f"imported {i}".encode() for i in range(1_105)})
            files = [cid for name, cid in added.items() if name.startswith("d/f")]
            expect(len(files) == 1_105, f"{len(files)} files added")
            held = files[:1_100]
            for i in range(0, len(held), 100):  # IPFS pins these itself (recursively)
                status, text = node.call("pin/add?" + "&".join(f"arg={cid}" for cid in held[i:i + 100]))
                expect(status == 200, text)
            lines = "".join(json.dumps({"cid": cid}) + "\n" for cid in files)
            r = ctx.run("state", "import", "--config", d.folder, "--force", stdin=lines)
            expect(r.returncode == 0, r.stderr)
            node.stop()
            c.start_all()
            wait_until(lambda: "listing IPFS's pins failed" in d.log() and "trying again in 5 s" in d.log(), 60,
                       "the listing to fail while IPFS is down")
            node.start()
            # Same-length base58 CIDv0 text sorts like the CIDs' bytes: the first 1,000 in the
            # pass get a pin/add, the held ones after them come from the listing.
            expected = sum(1 for cid in sorted(files)[1_000:] if cid in set(held))
            wait_until(lambda: f"1105 pins were new to this peer's tracker; {expected} of the 105 checked against "
                       "one pin/ls listing of IPFS were already pinned there" in d.log(), 90,
                       "the pass to record the held pins from one listing")
            missing = files[1_100:]
            for cid in missing:
                wait_until(lambda cid=cid: node.pinned(cid), 120, "the pins IPFS lacked to be pinned")

            def statuses():
                status, body = d.api("GET", "/pins?local=true")
                expect(status == 200, body)
                return [json.loads(line)["peer_map"][d.id]["status"] for line in body.splitlines() if line]
            # The pin/adds made while IPFS was down are retried after their backoff.
            wait_until(lambda: statuses() == ["pinned"] * 1_105, 120, "every status to say pinned")
    finally:
        for node in nodes:
            node.stop()



def test_status_of_every_pin_has_each_peers_answer_when_ipfs_reports_many_addresses(ctx):
    # Every status a peer sends carries its IPFS addresses. With 40 long ones (as a host with
    # several interfaces, QUIC and WebTransport reports) 300 statuses are over 2 MB, more than a
    # peer link's frame: a peer answers as many as fit and is asked again for the rest. (Before,
    # the follower's answer was dropped, and its part of the page became cluster_error.)
    announce = [f"/dns4/host-{i:02d}.interface-with-a-long-name.cluster.example.org/udp/4001/quic-v1"
                for i in range(40)]
    c, nodes = cluster_with_ipfs(ctx, 2, announce=announce)
    try:
        with c:
            c.start_all()
            leader = c.leader(20)
            cids = make_cids(300, seed=70)
            r = leader.cli("pin", "add", "-", stdin="\n".join(cids) + "\n")
            expect(r.returncode == 0, r.stderr)
            status, body = leader.api("GET", "/pins", timeout=60)
            expect(status == 200, body[:500])
            infos = [json.loads(line) for line in body.splitlines() if line]
            expect(sorted(i["cid"] for i in infos) == sorted(cids), f"{len(infos)} statuses for 300 pins")
            for info in infos:
                peers = info["peer_map"]
                expect(set(peers) == {d.id for d in c.daemons}, f"{info['cid']}: answers from {sorted(peers)}")
                for peer, answer in peers.items():
                    expect(answer["status"] != "cluster_error", f"{info['cid']} on {peer}: {answer}")
                    expect(len(answer["ipfs_peer_addresses"]) == 41,  # and the listen address
                           f"{info['cid']} on {peer}: {len(answer['ipfs_peer_addresses'])} addresses")
    finally:
        for node in nodes:
            node.stop()


def test_an_ipfs_daemon_and_an_api_given_by_name_are_resolved_and_reached(ctx):
    # Names under localhost resolve to the loopback without asking a name server (RFC 6761), so
    # the named path (resolved at each new connection) runs here without leaving the machine.
    nodes = start_nodes(ctx, 1)
    c = LocalCluster(ctx, 1)
    c.edit(c.daemons[0], lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(
        node_multiaddress=f"/dns4/ipfs.localhost/tcp/{nodes[0].api_port}"))
    try:
        with c:
            d = c.daemons[0].start()
            d.wait_ready()
            cid = nodes[0].add(os.urandom(50_000))
            r = c.ctx.run("pin", "add", cid, "--host", f"api.localhost:{d.api_port}")
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: nodes[0].pinned(cid), 60, "IPFS, named by /dns4/ipfs.localhost, to pin it")
            r = c.ctx.run("id", "--host", f"/dns4/api.localhost/tcp/{d.api_port}")
            expect(r.returncode == 0 and "IPFS ERROR" not in r.stdout.upper(), r.stdout + r.stderr)
    finally:
        for node in nodes:
            node.stop()


def test_id_shows_an_ipfs_daemon_that_stopped_or_came_back_at_once(ctx):
    # IPFS Cluster asks IPFS on every /id; a cached answer showed a stopped daemon as healthy for
    # up to 30 s (the periodic check).
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d = c.daemons[0].start()
            d.wait_ready()

            def ipfs():
                status, body = d.api("GET", "/id")
                expect(status == 200, body)
                return json.loads(body)["ipfs"]
            wait_until(lambda: ipfs().get("id") and not ipfs().get("error"), 30, "IPFS in /id")
            time.sleep(1)  # past the check the start made: the next one is 30 s away
            nodes[0].stop()
            now = ipfs()
            expect(now.get("error") and "id" not in now, f"a stopped IPFS daemon shown as healthy: {now}")
            r = d.cli("id")
            expect(r.returncode == 0 and "IPFS ERROR" in r.stdout.upper(), r.stdout + r.stderr)
            nodes[0].start()
            now = ipfs()
            expect(now.get("id") and not now.get("error"), f"IPFS back but /id says: {now}")
    finally:
        for node in nodes:
            node.stop()


def test_an_unpin_cancels_a_pin_that_ipfs_cannot_finish_instead_of_waiting_for_pin_timeout(ctx):
    # Content nobody provides: pin/add would run until pin_timeout (here 5 minutes). The unpin
    # cancels it, as IPFS Cluster's tracker does, and the CID is unpinned at once.
    c, nodes = cluster_with_ipfs(ctx, 1)
    try:
        with c:
            d = c.daemons[0]
            c.edit(d, lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(pin_timeout="5m"))
            d.start()
            d.wait_ready()
            cid = make_cids(1, seed=77)[0]
            r = d.cli("pin", "add", cid)
            expect(r.returncode == 0, r.stderr)
            wait_until(lambda: status_of(d, cid)[d.id] == "pinning", 30, "the pin to be under way")
            started = time.monotonic()
            r = d.cli("pin", "rm", "--wait", "--wait-timeout", "30s", cid)
            expect(r.returncode == 0, f"{r.stdout}{r.stderr}")
            expect(status_of(d, cid)[d.id] == "unpinned", str(status_of(d, cid)))
            expect(time.monotonic() - started < 30, "the unpin waited for the pin")
            expect(not nodes[0].pinned(cid), "pinned in IPFS")
    finally:
        for node in nodes:
            node.stop()


def test_wait_counts_the_pins_replication_factor_min_peers_unless_wait_limit_says_otherwise(ctx):
    # As ipfs-cluster-ctl: `pin add --wait` returns once replication_factor_min peers pinned.
    # The two IPFS daemons are not connected, so only the one that holds the content can pin it.
    nodes = start_nodes(ctx, 2, connect=False)
    c = LocalCluster(ctx, 2)
    for d, node in zip(c.daemons, nodes):
        c.edit(d, lambda cfg, node=node: cfg["ipfs_connector"]["ipfshttp"].update(
            node_multiaddress=node.maddr, connect_swarms_delay="10m"))
    try:
        with c:
            c.start_all()
            for d in c.daemons:
                d.wait_ready()
            holder = c.daemons[0]
            cid = nodes[0].add(os.urandom(20_000))
            r = holder.cli("pin", "add", "--rmin", "1", "--rmax", "2", "--wait", "--wait-timeout", "30s", cid)
            expect(r.returncode == 0, f"{r.stdout}{r.stderr}")
            expect(nodes[0].pinned(cid), "not pinned where the content is")
            expect(sorted(allocated(holder, cid)) == sorted(d.id for d in c.daemons), str(allocated(holder, cid)))
            r = holder.cli("pin", "add", "--rmin", "1", "--rmax", "2", "--wait", "--wait-limit", "0",
                           "--wait-timeout", "3s", cid)
            expect(r.returncode == 2 and "1 of the 2 peer(s) waited for pinned" in r.stderr
                   and "pinning" in r.stderr, f"{r.stdout}{r.stderr}")
            r = holder.cli("pin", "rm", "--wait", "--wait-timeout", "30s", cid)
            expect(r.returncode == 0, f"{r.stdout}{r.stderr}")
    finally:
        for node in nodes:
            node.stop()


if __name__ == "__main__":
    run(globals())
