"""Metrics, alerts, the balanced allocator and re-replication, with real daemons on 127.0.0.1.

The cluster-only tests allocate by the `tag:group` metric alone (no IPFS daemon is needed for
it); the last test runs 4 peers beside 4 real IPFS daemons and allocates by tag and free space,
as the default configuration does."""
import calendar
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402
from ipfs import start_nodes  # noqa: E402

FAST = {"monitor_ping_interval": "1s", "repin_grace_period": "2s"}


def fast_monitoring(cfg, groups=None, allocate_by=("tag:group",)):
    cfg["cluster"].update(FAST)
    cfg["monitor"]["pubsubmon"]["check_interval"] = "500ms"
    cfg["informer"]["disk"]["metric_ttl"] = "2s"
    cfg["informer"]["tags"]["metric_ttl"] = "2s"
    cfg["allocator"]["balanced"]["allocate_by"] = list(allocate_by)
    if groups is not None:
        cfg["informer"]["tags"]["tags"] = {"group": groups}


def name_of(daemon):
    """The peername a LocalCluster daemon was initialised with (its folder's name)."""
    return os.path.basename(daemon.folder)


def cluster(ctx, n, groups=None, name="peer", **edits):
    c = LocalCluster(ctx, n, name=name)
    for i, d in enumerate(c.daemons):
        c.edit(d, lambda cfg, i=i: fast_monitoring(cfg, groups[i] if groups else None))
        for section, values in edits.items():
            c.edit(d, lambda cfg, s=section, v=values: cfg[s].update(v))
    return c


def metrics(daemon, name):
    status, body = daemon.api("GET", f"/monitor/metrics/{name}")
    expect(status == 200, f"{status} {body}")
    return json.loads(body)


def allocations(daemon, cid):
    status, body = daemon.api("GET", f"/allocations/{cid}")
    expect(status == 200, f"{status} {body}")
    return sorted(json.loads(body)["allocations"])


def alerts(daemon):
    status, body = daemon.api("GET", "/health/alerts")
    expect(status == 200, f"{status} {body}")
    return json.loads(body)


def pin_all(daemon, cids, rmin, rmax):
    for cid in cids:
        status, body = daemon.api("POST", f"/pins/{cid}?replication-min={rmin}&replication-max={rmax}")
        expect(status == 200, body)


def leader_of(daemon):
    return json.loads(daemon.api("GET", "/id")[1])["raft_leader"]


def follower_holding_pins(c, cids):
    """A peer that is not the Raft leader and holds some of cids; the cids it holds."""
    leader = leader_of(c.daemons[0])
    dead = next(d for d in c.daemons if d.id != leader and any(d.id in allocations(c.daemons[0], x) for x in cids))
    return dead, [cid for cid in cids if dead.id in allocations(c.daemons[0], cid)]


def test_every_peer_sees_every_peers_metrics_with_their_expiry(ctx):
    with cluster(ctx, 3) as c:
        c.start_all()
        ids = sorted(d.id for d in c.daemons)
        for d in c.daemons:
            wait_until(lambda d=d: sorted(m["peer"] for m in metrics(d, "ping")) == ids, 15,
                       f"peer {d.index} to hold a ping from every peer")
        now_ns = time.time_ns()
        for m in metrics(c.daemons[0], "ping"):
            expect(m["valid"] and m["expire"] > now_ns - 1_000_000_000, str(m))
            expect(m["expire"] <= now_ns + 3_000_000_000, f"ping valid longer than 2 intervals: {m}")
        tags = metrics(c.daemons[1], "tag:group")
        expect(len(tags) == 3 and all(t["value"] == "default" and t["partitionable"] for t in tags), str(tags))

        r = c.daemons[2].cli("health", "metrics")
        expect(r.returncode == 0, r.stderr)
        names = r.stdout.split()
        expect("ping" in names and "tag:group" in names, r.stdout)
        r = c.daemons[2].cli("health", "metrics", "ping")
        expect(r.returncode == 0, r.stderr)
        lines = r.stdout.strip().splitlines()
        expect(len(lines) == 3, r.stdout)
        for line, peer in zip(lines, ids):
            expect(re.match(rf"^{peer} \| ping: .* \| Expires in: \d+ seconds?$", line), line)
        r = c.daemons[2].cli("health", "metrics", "ping", "--enc", "json")
        expect(r.returncode == 0 and len(json.loads(r.stdout)) == 3, r.stdout + r.stderr)
        # A name no peer publishes is refused, naming the ones this peer knows.
        r = c.daemons[2].cli("health", "metrics", "no-such-metric")
        expect(r.returncode == 1 and r.stdout == "", r.stdout + r.stderr)
        expect("no-such-metric" in r.stderr and "ping" in r.stderr, r.stderr)


def test_a_killed_peer_raises_one_alert_and_shows_in_status_and_graph(ctx):
    with cluster(ctx, 3) as c:
        c.start_all()
        dead = c.daemons[2]
        cid = make_cids(1, seed=41)[0]
        r = c.daemons[0].cli("pin", "add", "--no-status", cid)
        expect(r.returncode == 0, r.stderr)
        r = c.daemons[0].cli("health", "graph")
        expect(r.returncode == 0, r.stderr)
        for d in c.daemons:
            expect(d.folder.split(os.sep)[-1] in r.stdout, f"peer {d.index} missing from the graph:\n{r.stdout}")
        expect(r.stdout.startswith("digraph cluster {") and r.stdout.count(" -> ") >= 6, r.stdout)
        expect(not alerts(c.daemons[0]), "alerts before anything failed")

        dead.kill()
        wait_until(lambda: any(a["peer"] == dead.id and a["name"] == "ping" for a in alerts(c.daemons[0])), 15,
                   "an alert for the killed peer's ping")
        time.sleep(1.5)  # more checks of the same outage: still one ping alert for that peer
        pings = [a for a in alerts(c.daemons[0]) if a["peer"] == dead.id and a["name"] == "ping"]
        expect(len(pings) == 1, f"{len(pings)} ping alerts for one outage: {pings}")
        # triggered_at is an RFC 3339 time (IPFS Cluster's time.Time), expire Unix nanoseconds
        triggered = pings[0]["triggered_at"]
        expect(isinstance(triggered, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", triggered),
               str(pings[0]))
        whole, _, frac = triggered[:-1].partition(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        expect(seconds * 1_000_000_000 + int((frac + "0" * 9)[:9]) >= pings[0]["expire"], str(pings[0]))
        r = c.daemons[1].cli("health", "alerts")
        expect(r.returncode == 0 and f"{dead.id}: ping expired at" in r.stdout, r.stdout + r.stderr)
        # Only unexpired metrics are listed, as IPFS Cluster's LatestValid: the live peers' pings.
        r = c.daemons[1].cli("health", "metrics", "ping")
        expect(r.returncode == 0 and dead.id not in r.stdout, r.stdout + r.stderr)
        for d in c.daemons[:2]:
            expect(re.search(rf"^{d.id} \| ping: .* \| Expires in: ", r.stdout, re.M), r.stdout)

        r = c.daemons[0].cli("status", cid)
        expect(r.returncode == 0, r.stderr)
        expect(re.search(rf"(peer2|{dead.id})\s*: CLUSTER_ERROR", r.stdout), r.stdout)
        r = c.daemons[0].cli("health", "graph")
        expect(r.returncode == 0 and "unreachable" in r.stdout, r.stdout + r.stderr)
        # Labels break lines with DOT's \n (not a literal backslash), and the unreachable peer is
        # named as its peer record says.
        name = dead.folder.split(os.sep)[-1]
        line = next((l for l in r.stdout.splitlines() if "unreachable" in l), "")
        expect(f'label="{name}\\n' in line and "\\nunreachable" in line and "\\\\" not in r.stdout,
               r.stdout)


def test_the_status_of_one_pin_asks_its_allocations_and_shows_the_other_members_remote(ctx):
    with cluster(ctx, 3) as c:
        c.start_all()
        leader = leader_of(c.daemons[0])
        wait_until(lambda: len(metrics(c.daemons[0], "tag:group")) == 3, 15, "every peer's tag")
        cid = make_cids(1, seed=44)[0]
        pin_all(c.daemons[0], [cid], 1, 1)
        [holder] = allocations(c.daemons[0], cid)
        down = next(d for d in c.daemons if d.id not in (holder, leader))
        other = next(d for d in c.daemons if d.id not in (holder, down.id))
        asker = next(d for d in c.daemons if d is not down)
        down.kill()

        # A member that does not hold the pin is not asked: down or not, it is `remote`, and the
        # status has no cluster_error that would stop `pin add --wait` (IPFS Cluster's answer).
        for method, path in (("GET", f"/pins/{cid}"), ("POST", f"/pins/{cid}/recover")):
            status, body = asker.api(method, path)
            expect(status == 200, f"{method} {path}: {status} {body}")
            peer_map = json.loads(body)["peer_map"]
            expect(set(peer_map) == {d.id for d in c.daemons}, f"{method} {path}: {body}")
            expect(peer_map[down.id]["status"] == "remote" and peer_map[other.id]["status"] == "remote",
                   f"{method} {path}: {body}")
            expect(peer_map[holder]["status"] not in ("remote", "cluster_error"), f"{method} {path}: {body}")
            # Named by their peer names, as IPFS Cluster names them from their pings (the ids
            # were shown before).
            expect(peer_map[down.id]["peername"] == name_of(down) and
                   peer_map[other.id]["peername"] == name_of(other), f"{method} {path}: {body}")
        r = asker.cli("status", cid)
        expect(r.returncode == 0 and "CLUSTER_ERROR" not in r.stdout, r.stdout + r.stderr)
        # One line a member, in peer id order as ipfs-cluster-ctl prints them (not by name).
        names = re.findall(r"^    > (\S+)\s+: ", r.stdout, re.M)
        by_name = {name_of(d): d.id for d in c.daemons}
        expect([by_name.get(n) for n in names] == sorted(d.id for d in c.daemons), r.stdout)

        # The whole pinset is asked of every member: there the dead one is cluster_error.
        status, body = asker.api("GET", "/pins")
        [info] = [json.loads(line) for line in body.splitlines() if line.strip()]
        expect(info["peer_map"][down.id]["status"] == "cluster_error", body)
        expect(info["peer_map"][down.id]["peername"] == name_of(down), body)
        # A CID the pinset does not hold is `unpinned` on a member that cannot be asked (IPFS
        # Cluster asks nobody about it): `pin rm --wait` of ipfs-cluster-ctl does not fail on it.
        gone = make_cids(1, seed=45)[0]
        status, body = asker.api("GET", f"/pins/{gone}")
        peer_map = json.loads(body)["peer_map"]
        expect(status == 200 and {p["status"] for p in peer_map.values()} == {"unpinned"}, body)
        expect("no status from the peer" in peer_map[down.id]["error"] and
               peer_map[down.id]["peername"] == name_of(down), body)
        # A filter keeps each member's matching entries only, and the members that did not answer.
        status, body = asker.api("GET", "/pins?filter=remote")
        [info] = [json.loads(line) for line in body.splitlines() if line.strip()]
        expect(set(info["peer_map"]) == {other.id, down.id}, body)
        expect(info["peer_map"][other.id]["status"] == "remote", body)
        expect(info["peer_map"][down.id]["status"] == "cluster_error", body)

        # GET /peers gives each member's own answer: its version and leader, or its error.
        version = json.loads(asker.api("GET", "/version")[1])["version"]
        status, body = asker.api("GET", "/peers")
        infos = {i["id"]: i for i in (json.loads(line) for line in body.splitlines() if line.strip())}
        expect(infos[down.id]["error"] and infos[down.id]["version"] == "", str(infos[down.id]))
        for d in c.daemons:
            if d is not down:
                expect(infos[d.id]["version"] == version and infos[d.id]["raft_leader"] == leader, str(infos[d.id]))


def test_a_list_of_cids_is_pinned_by_the_same_rules_as_one_cid(ctx):
    # POST /pins with a body (`pin add -`) once skipped the checks of POST /pins/{cid}: a
    # recursive pin silently turned direct, an expiry in the past was committed, and a pin
    # again was allocated anew instead of keeping its allocations.
    with cluster(ctx, 3) as c:
        c.start_all()
        d = c.daemons[0]
        wait_until(lambda: len(metrics(d, "tag:group")) == 3, 15, "every peer's tag")
        cids = make_cids(30, seed=47)
        body = ("\n".join(cids) + "\n").encode()
        status, text = d.api("POST", "/pins?replication-min=1&replication-max=1", body=body)
        expect(status == 200 and json.loads(text)["count"] == 30, f"{status} {text}")
        before = {cid: json.loads(d.api("GET", f"/allocations/{cid}")[1])["allocations"] for cid in cids}
        expect(all(len(a) == 1 for a in before.values()), str(before))
        status, text = d.api("POST", "/pins?replication-min=1&replication-max=2", body=body)
        expect(status == 200, f"{status} {text}")
        for cid in cids:
            after = json.loads(d.api("GET", f"/allocations/{cid}")[1])["allocations"]
            expect(before[cid][0] in after, f"{cid}: allocated to {before[cid]}, then to {after}")

        refusals = [("?mode=direct", "line 1 ", "direct"), ("?expire-at=2001-01-01T00:00:00Z", "line 1 ", "past"),
                    (f"?pin-update={cids[0]}", "pin-update", "one pin a request")]
        for query, *words in refusals:
            status, text = d.api("POST", "/pins" + query, body=body)
            message = json.loads(text)["message"] if status != 200 else text
            expect(status == 400 and all(w in message for w in words), f"{query}: {status} {text}")
        pins = [json.loads(line) for line in d.api("GET", "/allocations")[1].splitlines() if line]
        expect(all(p["max_depth"] == -1 and p["expire_at"].startswith("0001") for p in pins),
               "a refused list changed the pins")


def test_graph_renders_with_graphviz_and_says_how_to_get_it(ctx):
    with cluster(ctx, 1) as c:
        c.start_all()
        d = c.daemons[0]
        out = os.path.join(ctx.scratch, "graph.svg")
        r = d.cli("health", "graph", "--format", "svg", "--file", out)
        expect(r.returncode == 0, r.stderr)
        expect("<svg" in open(out).read(), "not an SVG")
        # Without dot on PATH: the error says what is missing and how to install it.
        r = ctx.run("health", "graph", "--format", "png", "--host", d.host, env={"PATH": ctx.scratch})
        expect(r.returncode == 1 and "apt-get install graphviz" in r.stderr, r.stderr)
        r = d.cli("health", "graph", "--format", "jpeg")
        expect(r.returncode == 1 and "accepted: dot, svg, png" in r.stderr, r.stderr)


def test_allocations_spread_over_tag_groups(ctx):
    groups = ["dc1", "dc1", "dc2", "dc2"]
    with cluster(ctx, 4, groups=groups) as c:
        c.start_all()
        by_id = {d.id: groups[d.index] for d in c.daemons}
        wait_until(lambda: len(metrics(c.daemons[0], "tag:group")) == 4, 15, "every peer's tag")
        cids = make_cids(20, seed=42)
        for cid in cids:
            status, body = c.daemons[1].api("POST", f"/pins/{cid}?replication-min=2&replication-max=2")
            expect(status == 200, body)
        used = set()
        for cid in cids:
            allocs = allocations(c.daemons[0], cid)
            expect(len(allocs) == 2, str(allocs))
            expect({by_id[p] for p in allocs} == {"dc1", "dc2"}, f"{cid}: both copies in one group {allocs}")
            used.update(allocs)
        expect(len(used) == 4, f"20 pins used only {len(used)} of 4 peers")
        # More copies than peers: the error names what was needed; a server error (500), as IPFS
        # Cluster answers it, so that clients retrying server errors retry it.
        status, body = c.daemons[0].api("POST", f"/pins/{make_cids(1, seed=43)[0]}?replication-min=5&replication-max=5")
        expect(status == 500 and "not enough peers to allocate" in body and "need at least 5" in body, body)
        # Factors that can never be met are the request's fault: 400.
        status, body = c.daemons[0].api("POST", f"/pins/{make_cids(1, seed=43)[0]}?replication-min=3&replication-max=2")
        expect(status == 400 and "greater than max" in body, body)


def test_pins_of_a_dead_peer_move_once_and_never_with_repinning_disabled(ctx):
    with cluster(ctx, 4) as c:
        c.start_all()
        wait_until(lambda: len(metrics(c.daemons[0], "tag:group")) == 4, 15, "every peer's tag")
        cids = make_cids(30, seed=44)
        pin_all(c.daemons[0], cids, 2, 2)
        dead, held = follower_holding_pins(c, cids)
        live = [d for d in c.daemons if d is not dead]
        dead.kill()
        wait_until(lambda: all(dead.id not in allocations(live[0], cid) for cid in held), 20,
                   "the dead peer's pins to be allocated elsewhere")
        for cid in cids:
            allocs = allocations(live[1], cid)
            expect(len(allocs) == 2 and dead.id not in allocs, f"{cid}: {allocs}")
        untouched = [cid for cid in cids if cid not in held]
        before = {cid: allocations(live[0], cid) for cid in untouched}
        time.sleep(2)
        moved = sum(int(m) for d in live for m in re.findall(r"re-allocated (\d+) pin", d.log()))
        expect(moved == len(held), f"{moved} re-allocations logged for {len(held)} pins (duplicates?)")
        expect(before == {cid: allocations(live[0], cid) for cid in untouched}, "pins of live peers moved")

    with cluster(ctx, 3, name="norepin", cluster={"disable_repinning": True}) as c:
        c.start_all()
        wait_until(lambda: len(metrics(c.daemons[0], "tag:group")) == 3, 15, "every peer's tag")
        cid = make_cids(1, seed=45)[0]
        pin_all(c.daemons[0], [cid], 1, 1)
        holder = allocations(c.daemons[0], cid)[0]
        dead = next(d for d in c.daemons if d.id == holder)
        dead.kill()
        live = next(d for d in c.daemons if d is not dead)
        wait_until(lambda: any(a["peer"] == dead.id for a in alerts(live)), 15, "the alert")
        time.sleep(4)  # well past the 2 s grace
        expect(allocations(live, cid) == [holder], "re-allocated although disable_repinning is set")


def test_removed_peer_pins_are_reallocated(ctx):
    with cluster(ctx, 3) as c:
        c.start_all()
        wait_until(lambda: len(metrics(c.daemons[0], "tag:group")) == 3, 15, "every peer's tag")
        cids = make_cids(10, seed=46)
        pin_all(c.daemons[0], cids, 2, 2)
        gone = next(d for d in c.daemons if d.id != leader_of(c.daemons[0]))
        stay = [d for d in c.daemons if d is not gone]
        r = stay[0].cli("peers", "rm", gone.id)
        expect(r.returncode == 0, r.stderr)
        wait_until(lambda: gone.proc.poll() is not None, 20, "the removed peer to shut down")
        # Two peers left and rmin 2: every pin ends on both of them.
        wait_until(lambda: all(allocations(stay[0], cid) == sorted(d.id for d in stay) for cid in cids), 20,
                   "pins of the removed peer to move to the peers that stay")


def cluster_on_ipfs(ctx, nodes, allocate_by):
    """One peer beside each of `nodes`, fast monitoring, IPFS synced every 2 s."""
    c = LocalCluster(ctx, len(nodes))
    for d, node in zip(c.daemons, nodes):
        c.edit(d, lambda cfg, node=node: cfg["ipfs_connector"]["ipfshttp"].update(node_multiaddress=node.maddr))
        c.edit(d, lambda cfg: fast_monitoring(cfg, allocate_by=allocate_by))
        c.edit(d, lambda cfg: cfg["cluster"].update(ipfs_sync_interval="2s"))
    return c


def count_pinned(nodes, daemons, cid):
    return sum(1 for node, d in zip(nodes, daemons) if d.running() and node.pinned(cid))


def ipfs_peer_ids(node):
    status, text = node.call("swarm/peers")
    expect(status == 200, text)
    return {p["Peer"] for p in json.loads(text).get("Peers") or []}


def test_ipfs_daemons_are_connected_after_connect_swarms_delay_and_drawn(ctx):
    nodes = start_nodes(ctx, 2, connect=False)
    try:
        ids = [json.loads(node.call("id")[1])["ID"] for node in nodes]
        expect(ids[1] not in ipfs_peer_ids(nodes[0]), "the IPFS daemons were connected from the start")
        c = LocalCluster(ctx, 2)
        for d, node in zip(c.daemons, nodes):
            c.edit(d, lambda cfg, node=node: cfg["ipfs_connector"]["ipfshttp"].update(
                node_multiaddress=node.maddr, connect_swarms_delay="2s"))
            c.edit(d, lambda cfg: fast_monitoring(cfg))
        with c:
            c.start_all()
            wait_until(lambda: ids[1] in ipfs_peer_ids(nodes[0]), 30, "clusterpin to connect the IPFS daemons")
            status, body = c.daemons[0].api("GET", "/health/graph")
            expect(status == 200, body)
            graph = json.loads(body)
            expect(graph["cluster_to_ipfs"] == {c.daemons[0].id: ids[0], c.daemons[1].id: ids[1]}, body)
            expect(ids[1] in graph["ipfs_links"][ids[0]], body)
            expect(graph["cluster_links"][c.daemons[0].id] == [c.daemons[1].id], body)
            r = c.daemons[1].cli("health", "graph")
            expect(r.returncode == 0 and "IPFS" in r.stdout and "style=dashed" in r.stdout, r.stdout + r.stderr)
    finally:
        for node in nodes:
            node.stop()


def test_four_peers_real_ipfs_rereplicate_after_a_peer_dies(ctx):
    nodes = start_nodes(ctx, 4)
    try:
        c = cluster_on_ipfs(ctx, nodes, allocate_by=("tag:group", "freespace"))
        with c:
            c.start_all()
            wait_until(lambda: len(metrics(c.daemons[0], "freespace")) == 4, 20, "every peer's freespace")
            cids = [nodes[i % 4].add(os.urandom(20_000 + i)) for i in range(6)]
            for cid in cids:
                r = c.daemons[0].cli("pin", "add", "--rmin", "2", "--rmax", "2", "--no-status", cid)
                expect(r.returncode == 0, r.stderr)
            for cid in cids:
                wait_until(lambda cid=cid: count_pinned(nodes, c.daemons, cid) == 2, 60, f"{cid} pinned twice")
            dead, held = follower_holding_pins(c, cids)
            live = [d for d in c.daemons if d is not dead]
            dead.kill()
            # Within grace (2 s) + ping validity (2 s) + pinning: another peer holds each copy.
            for cid in held:
                wait_until(lambda cid=cid: dead.id not in allocations(live[0], cid), 20, f"{cid} re-allocated")
            for cid in cids:
                wait_until(lambda cid=cid: count_pinned(nodes, c.daemons, cid) >= 2, 60,
                           f"{cid} pinned on two live peers")
            # The pin moved away from the dead peer: its status no longer asks it (remote).
            r = live[0].cli("status", held[0])
            expect(r.returncode == 0 and re.search(rf"{name_of(dead)}\s*: REMOTE", r.stdout)
                   and "CLUSTER_ERROR" not in r.stdout, r.stdout + r.stderr)
            r = live[1].cli("health", "alerts")
            expect(dead.id in r.stdout, r.stdout + r.stderr)
            # From now on, every pin keeps at least rmin live pinned copies.
            for _ in range(10):
                for cid in cids:
                    n = count_pinned(nodes, c.daemons, cid)
                    expect(n >= 2, f"{cid} has {n} live pinned copies")
                time.sleep(0.3)
            # The dead peer comes back: it unpins what moved away, so no pin stays above rmax.
            dead.start()
            dead.wait_ready()
            for cid in held:
                wait_until(lambda cid=cid: not nodes[dead.index].pinned(cid), 60,
                           f"the returning peer to unpin {cid}, now allocated elsewhere")
            for cid in cids:
                pinned = sum(1 for node in nodes if node.pinned(cid))
                expect(pinned == 2, f"{cid} pinned on {pinned} IPFS daemons, rmax is 2")
    finally:
        for node in nodes:
            node.stop()



def test_a_pin_moved_away_while_its_peer_was_down_is_unpinned_there_even_without_its_records(ctx):
    # tracker.db commits its changes in batches, so a kill can take the newest records, among
    # them the one saying a CID was pinned. Here all of them are gone (tracker.db deleted while
    # the peer is down); the pin re-allocated meanwhile must still leave that peer's IPFS.
    nodes = start_nodes(ctx, 3)
    try:
        c = cluster_on_ipfs(ctx, nodes, allocate_by=("freespace",))
        with c:
            c.start_all()
            wait_until(lambda: len(metrics(c.daemons[0], "freespace")) == 3, 20, "every peer's freespace")
            leader = leader_of(c.daemons[0])
            dead = next(d for d in c.daemons if d.id != leader)
            live = [d for d in c.daemons if d is not dead]
            cid = nodes[0].add(os.urandom(30_000))
            r = live[0].cli("pin", "add", "--rmin", "1", "--rmax", "1", "--allocations", dead.id,
                            "--no-status", cid)
            expect(r.returncode == 0, r.stderr)
            expect(allocations(live[0], cid) == [dead.id], str(allocations(live[0], cid)))
            wait_until(lambda: nodes[dead.index].pinned(cid), 60, "the allocated peer's IPFS to pin it")
            dead.kill()
            data = os.path.join(dead.folder, "clusterpin-data")
            expect(os.path.exists(os.path.join(data, "tracker.db")), "no tracker.db in " + data)
            for name in ("tracker.db", "tracker.db-wal", "tracker.db-shm"):
                if os.path.exists(os.path.join(data, name)):
                    os.remove(os.path.join(data, name))
            wait_until(lambda: allocations(live[0], cid) not in ([], [dead.id]), 30, f"{cid} re-allocated")
            holder = next(d for d in live if d.id in allocations(live[0], cid))
            wait_until(lambda: nodes[holder.index].pinned(cid), 60, "the new holder's IPFS to pin it")
            dead.start()
            dead.wait_ready()
            wait_until(lambda: not nodes[dead.index].pinned(cid), 60,
                       "the returning peer to unpin what moved away")
            expect(nodes[holder.index].pinned(cid), "the new holder lost its pin")
    finally:
        for node in nodes:
            node.stop()

def test_a_peer_stopped_cleanly_gets_no_new_pins_and_raises_its_alert_at_once(ctx):
    # Its last ping and tags would stay valid for 30 s: without the farewell, new pins went to
    # the stopped peer and `pin add --wait` failed on it.
    def slow_metrics(cfg):
        fast_monitoring(cfg)
        cfg["cluster"]["monitor_ping_interval"] = "15s"
        cfg["informer"]["tags"]["metric_ttl"] = "30s"
    c = LocalCluster(ctx, 3)
    for d in c.daemons:
        c.edit(d, slow_metrics)
    with c:
        c.start_all()
        leader = leader_of(c.daemons[0])
        asker = next(d for d in c.daemons if d.id == leader)
        gone = next(d for d in c.daemons if d.id != leader)
        wait_until(lambda: len(metrics(asker, "tag:group")) == 3, 15, "every peer's tag")
        gone.stop()
        wait_until(lambda: any(a["peer"] == gone.id and a["name"] == "ping" for a in alerts(asker)), 5,
                   "an alert for the stopped peer's ping")
        cids = make_cids(8, seed=48)
        pin_all(asker, cids, 2, 2)
        for cid in cids:
            expect(gone.id not in allocations(asker, cid), f"{cid} allocated to the stopped peer")


if __name__ == "__main__":
    run(globals())
