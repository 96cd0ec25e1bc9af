"""Multi-process tests: real clusterpin daemons on 127.0.0.1 with real SQLite files, driven
through the CLI and the REST API. At the end of each test every acknowledged pin is checked on
every live peer."""
import json
import http.client
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, free_port, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402


def pin(daemon, cid, *args):
    r = daemon.cli("pin", "add", *args, cid)
    expect(r.returncode == 0, f"pin add {cid} on peer {daemon.index}: {r.stderr}")
    return cid


def all_live_have(cluster, cids, timeout=20):
    for d in cluster.daemons:
        if d.running():
            wait_until(lambda d=d: set(cids) <= d.pin_cids(), timeout, f"peer {d.index} to list every acknowledged pin")


def start_with_a_leaver(c):
    """Starts the cluster with its last peer run with --leave; returns that peer."""
    for d in c.daemons[:-1]:
        d.start()
    leaver = c.daemons[-1].start("--leave")
    for d in c.daemons:
        d.wait_ready()
    return leaver


def a_follower_and_the_others(c):
    """A follower of the cluster's leader, and the other daemons."""
    leader = json.loads(c.daemons[0].api("GET", "/id")[1])["raft_leader"]
    victim = next(d for d in c.daemons if d.id != leader)
    return victim, [d for d in c.daemons if d is not victim]


def remove_a_stopped_follower(c):
    """Stops a follower (the others keep their leader) and removes it through another peer;
    returns it and the peers left."""
    victim, live = a_follower_and_the_others(c)
    victim.stop()
    r = live[0].cli("peers", "rm", victim.id)
    expect(r.returncode == 0, r.stderr)
    return victim, live


def expect_left_by_itself(victim, what, said):
    """The started peer exits 0 on its own within 30 s, saying `said`, with its state moved
    aside and cluster.bootstrap filled for a rejoin."""
    wait_until(lambda: victim.proc.poll() is not None, 30, what)
    log = victim.log()[victim.log_offset:]
    expect(victim.proc.returncode == 0 and said in log, f"exit {victim.proc.returncode}:\n{log[-1500:]}")
    expect(os.path.isdir(os.path.join(victim.folder, "clusterpin-data.old.0")), "state not moved aside")
    cfg = json.load(open(os.path.join(victim.folder, "service.json")))
    expect(cfg["cluster"]["bootstrap"], "cluster.bootstrap not filled")


def test_single_peer_cluster_pins_and_lists(ctx):
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0].start()
        d.wait_ready()
        cid = make_cids(1)[0]
        pin(d, cid, "--name", "first")
        r = d.cli("pin", "ls")
        expect(r.returncode == 0 and cid in r.stdout and "| first |" in r.stdout, r.stdout + r.stderr)
        r = d.cli("id")
        expect(r.returncode == 0 and d.id in r.stdout and "Sees 0 other peers" in r.stdout, r.stdout)


def test_pin_ls_whose_last_page_fills_the_send_buffer_ends_and_lists_each_pin_once(ctx):
    # Pins are listed in pages of 1,000; here the last page holds 900 pins, more JSON than the
    # 256 KiB send buffer. Such a page used to wait for the buffer to drain and go on from the
    # first pin: `pin ls` streamed the pinset again and again and never ended.
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0].start()
        d.wait_ready()
        cids = make_cids(1900, seed=90)
        r = d.cli("pin", "add", "-", stdin="\n".join(cids) + "\n")
        expect(r.returncode == 0, r.stderr)
        r = d.cli("pin", "ls", timeout=60)
        listed = re.findall(r"bafk[a-z2-7]+", r.stdout)
        expect(r.returncode == 0 and sorted(listed) == sorted(cids),
               f"exit {r.returncode}, {len(listed)} CIDs listed ({len(set(listed))} distinct) for 1,900 pins")
        status, body = d.api("GET", "/allocations", timeout=60)
        listed = [json.loads(line)["cid"] for line in body.splitlines() if line]
        expect(status == 200 and sorted(listed) == sorted(cids), f"{status}: {len(listed)} pins in the stream")


def test_pin_update_gives_the_new_cid_the_old_pins_options(ctx):
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0].start()
        d.wait_ready()
        old, new = make_cids(2, seed=10)
        pin(d, old, "--name", "v1", "--metadata", "owner=ana")
        r = d.cli("pin", "update", old, new, "--enc", "json")
        expect(r.returncode == 0, r.stderr)
        updated = json.loads(r.stdout)
        expect(updated["cid"] == new and updated["name"] == "v1", r.stdout)
        expect(updated["metadata"] == {"owner": "ana"} and updated["pin_update"] == old, r.stdout)
        expect({old, new} <= d.pin_cids(), "pin update must keep the old pin")


def test_pin_update_gives_a_new_cid_the_old_allocations_with_one_down_and_a_pinned_cid_keeps_its_own(ctx):
    # IPFS Cluster's PinUpdate copies the old pin's allocations as they are. The update used to
    # pass them through the allocator, which dropped a peer whose metric had expired (down for
    # a minute, restarting) and gave the new CID to a third peer instead. A CID already pinned
    # keeps its own allocations (its holders keep it).
    with LocalCluster(ctx, 3) as c:
        def setup(cfg):  # allocated by tag, which needs no IPFS to measure
            cfg["cluster"]["monitor_ping_interval"] = "1s"
            cfg["cluster"]["disable_repinning"] = True  # the old pin stays where it is
            cfg["informer"]["tags"]["metric_ttl"] = "2s"
            cfg["allocator"]["balanced"]["allocate_by"] = ["tag:group"]
        for d in c.daemons:
            c.edit(d, setup)
        c.start_all()
        leader = c.leader(20)
        down, third = [d for d in c.daemons if d is not leader]

        def peers_with_tags():
            status, body = leader.api("GET", "/monitor/metrics/tag:group")
            return len(json.loads(body)) if status == 200 else 0
        wait_until(lambda: peers_with_tags() == 3, 20, "every peer's tag metric")
        old, new, pinned = make_cids(3, seed=14)
        pin(leader, old, "--replication", "2", "--allocations", f"{leader.id},{down.id}")
        pin(leader, pinned, "--replication", "2", "--allocations", f"{leader.id},{third.id}")
        status, body = leader.api("GET", f"/allocations/{old}")
        expect(status == 200 and sorted(json.loads(body)["allocations"]) == sorted([leader.id, down.id]),
               f"{status} {body}")
        down.kill()
        wait_until(lambda: peers_with_tags() == 2, 30, "the stopped peer's metric to expire")
        r = leader.cli("pin", "update", old, new, "--enc", "json")
        expect(r.returncode == 0, r.stderr)
        status, body = leader.api("GET", f"/allocations/{new}")
        allocations = json.loads(body)["allocations"] if status == 200 else None
        expect(allocations is not None and sorted(allocations) == sorted([leader.id, down.id]),
               f"the new CID went to {allocations}, the old one is on {[leader.id, down.id]} "
               f"(third peer {third.id})")
        r = leader.cli("pin", "update", old, pinned, "--enc", "json")
        expect(r.returncode == 0, r.stderr)
        status, body = leader.api("GET", f"/allocations/{pinned}")
        allocations = json.loads(body)["allocations"] if status == 200 else None
        expect(allocations is not None and sorted(allocations) == sorted([leader.id, third.id]),
               f"a CID already pinned on {[leader.id, third.id]} moved to {allocations}")


def test_pin_update_of_an_expired_pin_asks_for_a_new_expiry(ctx):
    # The new pin takes the old one's expiry unless given one; an old pin whose expiry passed
    # (its unpin not proposed yet) was refused with "expire-at is in the past", naming an
    # option the user had not given.
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0]
        c.edit(d, lambda cfg: cfg["cluster"].update(state_sync_interval="1h"))  # no expiry pass
        d.start()
        d.wait_ready()
        old, new = make_cids(2, seed=15)
        pin(d, old, "--expire-in", "1s")
        time.sleep(1.5)
        expect(old in d.pin_cids(), "the expired pin was unpinned before the update")
        r = d.cli("pin", "update", old, new)
        expect(r.returncode != 0 and f"{old} expired at" in r.stderr and "--expire-in" in r.stderr,
               f"exit {r.returncode}: {r.stderr}")
        expect(new not in d.pin_cids(), "a refused update pinned the new CID")
        r = d.cli("pin", "update", old, new, "--expire-in", "1h")
        expect(r.returncode == 0, r.stderr)
        expect(new in d.pin_cids(), "the update with an expiry did not pin the new CID")


def test_expired_pins_are_unpinned_by_the_cluster(ctx):
    with LocalCluster(ctx, 2) as c:
        for d in c.daemons:
            c.edit(d, lambda cfg: cfg["cluster"].update(state_sync_interval="1s"))
        c.start_all()
        short, lasting = make_cids(2, seed=13)
        pin(c.daemons[0], short, "--expire-in", "2s")
        pin(c.daemons[0], lasting)
        for d in c.daemons:
            wait_until(lambda d=d: short not in d.pin_cids(), 30, f"peer {d.index} to drop the expired pin")
        expect(all(lasting in d.pin_cids() for d in c.daemons), "a pin without expiry was dropped")
        unpins = sum(d.log().count("unpinned 1 expired pin") for d in c.daemons)
        expect(unpins == 1, f"expected exactly one peer to unpin it, saw {unpins}")


def test_second_daemon_on_the_same_folder_is_refused(ctx):
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0].start()
        d.wait_ready()
        r = ctx.run("daemon", "--config", d.folder, timeout=20)
        expect(r.returncode != 0 and "clusterpin daemon is running" in r.stderr, r.stderr)


def test_pin_made_on_a_follower_appears_on_every_peer(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        leader = c.leader(20)
        follower = next(d for d in c.daemons if d is not leader)
        cids = [pin(follower, cid) for cid in make_cids(3)]
        # Read-your-writes on the peer that answered.
        expect(set(cids) <= follower.pin_cids(), "the answering follower does not list its pins")
        all_live_have(c, cids)


def test_pins_commit_with_a_follower_killed_and_it_catches_up_after_restart(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        leader = c.leader(20)
        victim = next(d for d in c.daemons if d is not leader)
        victim.kill()
        cids = [pin(leader, cid) for cid in make_cids(5, seed=1)]
        victim.start()
        victim.wait_ready()
        all_live_have(c, cids)


def test_peers_named_by_dns_names_form_the_cluster_and_a_restarted_one_is_dialled_again(ctx):
    # cluster.peers as a container setup writes them (/dns4/<name>/tcp/...): names under
    # localhost resolve to the loopback without asking a name server (RFC 6761), so the named
    # path (resolved at each dial) runs here without leaving the machine.
    with LocalCluster(ctx, 3, peers=False) as c:
        for d in c.daemons:
            c.set_peers(d, [o.address.replace("/ip4/127.0.0.1/", f"/dns4/peer{o.index}.localhost/")
                            for o in c.daemons if o is not d])
        c.start_all()
        leader = c.leader(20)
        cids = [pin(leader, cid) for cid in make_cids(3, seed=70)]
        all_live_have(c, cids)
        victim = next(d for d in c.daemons if d is not leader)
        victim.kill()
        victim.start()
        victim.wait_ready()
        more = [pin(c.leader(20), cid) for cid in make_cids(2, seed=71)]
        all_live_have(c, cids + more)


def test_leader_killed_a_new_one_takes_over_and_pinning_resumes(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        before = [pin(c.daemons[0], cid) for cid in make_cids(2, seed=2)]
        old = c.leader(20)
        old.kill()
        survivor = next(d for d in c.daemons if d.running())
        new = wait_until(lambda: c.leader(20) if c.leader(20) is not old else None, 20, "a new leader")
        expect(new is not old, "the killed leader is still reported")
        after = [pin(survivor, cid) for cid in make_cids(2, seed=3)]
        old.start()
        old.wait_ready()
        all_live_have(c, before + after)


def test_pins_acknowledged_just_before_every_peer_is_killed_are_there_after_restart(ctx):
    # state.db commits applied entries in groups (at least every 100 ms): peers killed right
    # after the acknowledgements restart with the newest entries only in raft.db, and replay them.
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        leader = c.leader(20)
        cids = [pin(leader, cid) for cid in make_cids(20, seed=5)]
        for d in c.daemons:
            d.kill()
        for d in c.daemons:
            d.start()
        for d in c.daemons:
            d.wait_ready()
        all_live_have(c, cids)


def test_peers_rm_shrinks_the_cluster_and_the_removed_peer_shuts_down(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        victim = c.daemons[2]
        r = c.daemons[0].cli("peers", "rm", victim.id)
        expect(r.returncode == 0, r.stderr)
        wait_until(lambda: victim.proc.poll() is not None, 20, "the removed peer to exit")
        expect(victim.proc.returncode == 0, f"removed peer exited {victim.proc.returncode}")
        status, body = c.daemons[0].api("GET", "/id")
        expect(victim.id not in json.loads(body)["cluster_peers"], body)
        cid = pin(c.daemons[1], make_cids(1, seed=4)[0])
        all_live_have(c, [cid])
        # The removed peer keeps no cluster state and knows how to come back.
        expect(os.path.isdir(os.path.join(victim.folder, "clusterpin-data.old.0")), "state not moved aside")
        cfg = json.load(open(os.path.join(victim.folder, "service.json")))
        expect(cfg["cluster"]["bootstrap"], "cluster.bootstrap not filled")


def test_leave_on_shutdown_and_a_restart_rejoins_through_cluster_bootstrap(ctx):
    with LocalCluster(ctx, 3) as c:
        leaver = start_with_a_leaver(c)
        cids = [pin(c.daemons[0], cid) for cid in make_cids(3, seed=11)]
        all_live_have(c, cids)
        expect(leaver.stop() == 0, "the leaving peer did not stop cleanly")
        status, body = c.daemons[0].api("GET", "/id")
        wait_until(lambda: leaver.id not in json.loads(c.daemons[0].api("GET", "/id")[1])["cluster_peers"],
                   20, "the leaver to be out of the peerset")
        cfg = json.load(open(os.path.join(leaver.folder, "service.json")))
        expect(cfg["cluster"]["bootstrap"], "cluster.bootstrap not filled on leave")
        more = [pin(c.daemons[1], cid) for cid in make_cids(2, seed=12)]
        leaver.start()
        leaver.wait_ready()
        all_live_have(c, cids + more)
        wait_until(lambda: leaver.id in json.loads(c.daemons[0].api("GET", "/id")[1])["cluster_peers"],
                   20, "the leaver to be a member again")


def test_a_peer_that_left_rejoins_though_the_log_replays_its_old_removal_in_small_appends(ctx):
    # The rejoining peer catches up from the start of the leader's log, max_append_entries per
    # Append and 8 Appends in flight: with more entries than that after its removal, it applies
    # its own old removal before the entry that added it back arrives. That removal is from its
    # earlier membership and must not send it away again.
    with LocalCluster(ctx, 3) as c:
        for d in c.daemons:
            c.edit(d, lambda cfg: cfg["consensus"]["raft"].update(max_append_entries=1))
        leaver = start_with_a_leaver(c)
        cids = [pin(c.daemons[0], cid) for cid in make_cids(2, seed=51)]
        expect(leaver.stop() == 0, "the leaving peer did not stop cleanly")
        more = [pin(c.daemons[i % 2], cid) for i, cid in enumerate(make_cids(24, seed=52))]
        leaver.start()
        leaver.wait_ready(timeout=60)
        time.sleep(2)  # the replayed removal, when taken for a new one, ends the peer within this
        expect(leaver.running(), f"the rejoined peer stopped:\n{leaver.log()[-1500:]}")
        expect("was removed" not in leaver.log()[leaver.log_offset:], leaver.log()[-1500:])
        all_live_have(c, cids + more)
        status, body = c.daemons[0].api("GET", "/id")
        expect(leaver.id in json.loads(body)["cluster_peers"], body)


def test_a_peer_stopped_between_applying_its_removal_and_leaving_leaves_at_its_next_start(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        leader = json.loads(c.daemons[0].api("GET", "/id")[1])["raft_leader"]
        victim = next(d for d in c.daemons if d.id != leader)
        via = next(d for d in c.daemons if d is not victim)
        victim.stop()
        victim.start(env={"CLUSTERPIN_FAULT": "after-removal-applied"})
        victim.wait_ready()
        r = via.cli("peers", "rm", victim.id)
        expect(r.returncode == 0, r.stderr)
        wait_until(lambda: victim.proc.poll() is not None, 20, "the fault hook to end the removed peer")
        expect(victim.proc.returncode == 86, f"exit {victim.proc.returncode}:\n{victim.log()[-1500:]}")
        expect(os.path.isdir(os.path.join(victim.folder, "clusterpin-data")), "state moved aside before the stop")
        # Its log holds its applied removal: the start finishes leaving instead of waiting for
        # a leader that no longer talks to it.
        victim.start()
        expect_left_by_itself(victim, "the removed peer to leave at its start", "was removed")
        cid = pin(via, make_cids(1, seed=53)[0])
        all_live_have(c, [cid])


def test_a_peer_removed_while_stopped_and_caught_up_by_a_later_snapshot_leaves(ctx):
    # The leader keeps replicating to a removed peer for a while (so it can learn of its
    # removal). Behind the leader's compacted log, it receives a snapshot taken after its
    # removal and never applies the removal entry itself: the snapshot's configuration tells it.
    with LocalCluster(ctx, 3) as c:
        for d in c.daemons:
            # A longer election timeout widens the window (a number of heartbeats) in which the
            # leader still replicates to a removed peer.
            c.edit(d, lambda cfg: cfg["consensus"]["raft"].update(
                snapshot_threshold=20, trailing_logs=5, election_timeout="1500ms"))
        c.start_all()
        victim, live = remove_a_stopped_follower(c)
        cids = [pin(live[i % 2], cid) for i, cid in enumerate(make_cids(25, seed=54))]
        snapshots = os.path.join(live[0].folder, "clusterpin-data", "snapshots")
        wait_until(lambda: os.path.isdir(snapshots) and os.listdir(snapshots), 20, "a snapshot")
        victim.start()
        expect_left_by_itself(victim, "the removed peer to leave after the snapshot", "was removed")
        all_live_have(c, cids)


def test_a_peer_removed_while_stopped_leaves_when_it_starts_and_the_members_tell_it(ctx):
    # Its log still makes it a voter and no leader contacts it any more (the members restarted
    # after the removal, so none replicates to it): it campaigns, and the members answer that
    # their configuration lacks it. Before, it waited for a leader and exited with an error.
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        victim, live = remove_a_stopped_follower(c)
        cid = pin(live[1], make_cids(1, seed=55)[0])
        for d in live:
            d.stop()
        for d in live:
            d.start()
        for d in live:
            d.wait_ready()
        victim.start()
        expect_left_by_itself(victim, "the removed peer to leave at its start", "reports that this peer is not in")
        all_live_have(c, [cid])


def test_a_peer_removed_while_stopped_that_does_not_campaign_is_told_when_it_links_up(ctx):
    # A learner never campaigns, and no leader contacts a removed peer: the members tell it when
    # its links come up. Here the removed peer's election timeout is longer than its wait for a
    # leader, so it cannot campaign either; before, it exited with "no leader" instead of leaving.
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        victim, live = remove_a_stopped_follower(c)
        for d in live:  # so that no leader replicates to it any more
            d.stop()
        for d in live:
            d.start()
        for d in live:
            d.wait_ready()
        c.edit(victim, lambda cfg: cfg["consensus"]["raft"].update(
            election_timeout="120s", wait_for_leader_timeout="20s"))
        victim.start()
        expect_left_by_itself(victim, "the removed peer to leave at its start", "reports that this peer is not in")
        all_live_have(c, [pin(live[0], make_cids(1, seed=56)[0])])


def test_a_founder_cleaned_up_rejoins_through_the_others_only_once_removed(ctx):
    # Started again on its empty folder, a founder would found the cluster anew: a voter that
    # forgot its log and its votes. After `state cleanup` it joins through the other peers
    # instead, which refuse it while it is a voter and take it back once it was removed.
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        cids = [pin(c.daemons[i % 3], cid) for i, cid in enumerate(make_cids(6, seed=57))]
        victim, live = a_follower_and_the_others(c)
        victim.stop()
        r = ctx.run("state", "cleanup", "--config", victim.folder, "--force")
        expect(r.returncode == 0 and "cluster.bootstrap now lists the 2 other peer(s)" in r.stderr, r.stderr)
        cfg = json.load(open(os.path.join(victim.folder, "service.json")))
        expect(len(cfg["cluster"]["bootstrap"]) == 2, str(cfg["cluster"]))
        victim.start()
        wait_until(lambda: victim.proc.poll() is not None, 60, "the cleaned-up voter to be refused")
        log = victim.log()[victim.log_offset:]
        expect(victim.proc.returncode != 0 and "remove it first" in log, f"exit {victim.proc.returncode}:\n{log[-1500:]}")
        r = live[0].cli("peers", "rm", victim.id)
        expect(r.returncode == 0, r.stderr)
        victim.start()
        victim.wait_ready(60)
        wait_until(lambda: victim.pin_cids() == set(cids), 30, "the rejoined peer to hold every pin")


def test_new_peer_bootstraps_and_catches_up_through_a_snapshot(ctx):
    with LocalCluster(ctx, 3) as c:
        for d in c.daemons:
            c.edit(d, lambda cfg: cfg["consensus"]["raft"].update(snapshot_threshold=20, trailing_logs=5))
        c.start_all()
        cids = []
        for i, cid in enumerate(make_cids(60, seed=5)):
            cids.append(pin(c.daemons[i % 3], cid))
        snapshots = os.path.join(c.daemons[0].folder, "clusterpin-data", "snapshots")
        wait_until(lambda: os.path.isdir(snapshots) and os.listdir(snapshots), 20, "a snapshot")
        joiner = c.add_config("joiner")
        joiner.start("--bootstrap", c.daemons[1].address)
        joiner.wait_ready()
        all_live_have(c, cids)
        status, body = joiner.api("GET", "/id")
        expect(len(json.loads(body)["cluster_peers"]) == 4, body)


def test_a_stop_between_a_snapshots_swap_and_its_record_in_raft_db_restarts_and_loses_nothing(ctx):
    # A follower behind the leader's log receives its snapshot: state.db is swapped first and
    # raft.db records the snapshot after. A stop in between (here forced by a fault hook that
    # ends the process as kill -9 would) left a follower that refused every start ("applied
    # index ... is beyond commit index").
    with LocalCluster(ctx, 3) as c:
        for d in c.daemons:
            c.edit(d, lambda cfg: cfg["consensus"]["raft"].update(snapshot_threshold=20, trailing_logs=5))
        c.start_all()
        leader = json.loads(c.daemons[0].api("GET", "/id")[1])["raft_leader"]
        lagging = next(d for d in c.daemons if d.id != leader)  # the others keep their leader
        live = [d for d in c.daemons if d is not lagging]
        lagging.stop()
        cids = [pin(live[i % 2], cid) for i, cid in enumerate(make_cids(60, seed=49))]
        snapshots = os.path.join(live[0].folder, "clusterpin-data", "snapshots")
        wait_until(lambda: os.path.isdir(snapshots) and os.listdir(snapshots), 20, "a snapshot")
        lagging.start(env={"CLUSTERPIN_FAULT": "after-snapshot-restore"})
        wait_until(lambda: lagging.proc.poll() is not None, 30, "the fault hook to end the follower")
        expect(lagging.proc.returncode == 86, f"exit {lagging.proc.returncode}:\n{lagging.log()[-1500:]}")
        lagging.start()
        lagging.wait_ready()
        restarted = lagging.log()[lagging.log_offset:]
        expect("recorded it" in restarted, lagging.log()[-1500:])
        # The log's entries between tracker.db's index and the snapshot were never applied here:
        # none is re-checked (a pin/rm of a CID such an entry named could remove a pin this
        # peer never made); the start's reconcile compares the pinset with what it holds.
        expect("state.db was restored from a received snapshot" in restarted, restarted[-1500:])
        expect("checked with IPFS again" not in restarted, restarted[-1500:])
        more = [pin(lagging, cid) for cid in make_cids(3, seed=50)]
        all_live_have(c, cids + more)


def test_bootstrap_into_a_folder_holding_state_is_refused_with_the_reset_command(ctx):
    with LocalCluster(ctx, 2) as c:
        c.start_all()
        other = LocalCluster(ctx, 1, peers=False, name="other")
        o = other.daemons[0].start()
        o.wait_ready()
        o.stop()
        r = ctx.run("daemon", "--config", o.folder, "--bootstrap", c.daemons[0].address, timeout=30)
        expect(r.returncode != 0 and "state cleanup" in r.stderr, r.stderr)


def test_a_founder_whose_data_folder_was_lost_does_not_found_the_cluster_again(ctx):
    # Its config folder outlives the data folder (a deleted folder, a new disk) and says it was a
    # member: started with the same cluster.peers it is refused, names the way back, and after
    # `state cleanup` and its removal it joins and gets every pin.
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        cids = [pin(c.daemons[i % 3], cid) for i, cid in enumerate(make_cids(6, seed=59))]
        victim, live = a_follower_and_the_others(c)
        wait_until(lambda: victim.pin_cids() == set(cids), 30, "the victim to hold every pin")
        cluster_id = open(os.path.join(victim.folder, "clusterpin.member")).read().strip()
        expect(cluster_id != "", "no clusterpin.member")
        victim.kill()
        shutil.rmtree(os.path.join(victim.folder, "clusterpin-data"))
        victim.start()
        wait_until(lambda: victim.proc.poll() is not None, 60, "the start on a lost data folder to be refused")
        log = victim.log()[victim.log_offset:]
        expect(victim.proc.returncode != 0 and cluster_id in log and f"peers rm {victim.id}" in log
               and "--bootstrap" in log, f"exit {victim.proc.returncode}:\n{log[-1500:]}")
        # The cluster went on without it and nothing was founded beside it.
        more = [pin(live[0], cid) for cid in make_cids(2, seed=60)]
        r = ctx.run("state", "cleanup", "--config", victim.folder, "--force")
        expect(r.returncode == 0 and "cluster.bootstrap now lists the 2 other peer(s)" in r.stderr, r.stderr)
        expect(not os.path.exists(os.path.join(victim.folder, "clusterpin.member")), "marker kept by cleanup")
        r = live[0].cli("peers", "rm", victim.id)
        expect(r.returncode == 0, r.stderr)
        victim.start()
        victim.wait_ready(60)
        wait_until(lambda: victim.pin_cids() == set(cids + more), 30, "the rejoined peer to hold every pin")


def test_a_voter_that_lost_its_state_is_refused_until_removed_and_then_rejoins(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        cids = [pin(c.daemons[0], cid) for cid in make_cids(3, seed=45)]
        all_live_have(c, cids)
        # A follower: with the leader gone the join would reach no leader until an election.
        leader = json.loads(c.daemons[0].api("GET", "/id")[1])["raft_leader"]
        wiped = next(d for d in c.daemons if d.id != leader)
        via = next(d for d in c.daemons if d is not wiped)
        wiped.kill()
        r = ctx.run("state", "cleanup", "--config", wiped.folder, "--force")
        expect(r.returncode == 0, r.stderr)
        # Let back in as a voter with an empty log, it could elect a leader without the pins.
        r = ctx.run("daemon", "--config", wiped.folder, "--bootstrap", via.address, timeout=60)
        expect(r.returncode != 0 and "peers rm" in r.stderr and wiped.id in r.stderr, r.stderr)
        status, body = via.api("GET", "/id")
        expect(len(json.loads(body)["cluster_peers"]) == 3, body)
        r = via.cli("peers", "rm", wiped.id)
        expect(r.returncode == 0, r.stderr)
        wiped.start("--bootstrap", via.address)
        wiped.wait_ready(timeout=60)
        more = [pin(via, cid) for cid in make_cids(2, seed=46)]
        all_live_have(c, cids + more)


def test_an_entry_no_peer_can_decode_is_refused_before_it_reaches_the_log(ctx):
    # A peer holding the secret but of another version (or faulty) forwards bytes that are no
    # command: committed, they stopped every peer at its apply, and again at every restart.
    probe = os.environ.get("RPC_PROBE") or os.path.join(
        os.path.dirname(os.path.abspath(ctx.binary)), "..", "tests", "net", "rpc_probe")
    expect(os.path.exists(probe), f"rpc_probe not built at {probe}")
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        leader_id = json.loads(c.daemons[0].api("GET", "/id")[1])["raft_leader"]
        leader = next(d for d in c.daemons if d.id == leader_id)
        secret = json.load(open(os.path.join(leader.folder, "service.json")))["cluster"]["secret"]
        r = subprocess.run([probe, secret, leader.address, "commit", "07"], capture_output=True,
                           text=True, timeout=60)
        expect(r.returncode == 1 and "does not decode" in r.stdout, r.stdout + r.stderr)
        cid = pin(leader, make_cids(1, seed=57)[0])  # an entry after it commits and applies
        all_live_have(c, [cid])
        for d in c.daemons:
            expect(d.running(), f"peer {d.index} stopped:\n{d.log()[-1500:]}")


def test_a_peer_with_another_secret_never_joins(ctx):
    with LocalCluster(ctx, 2) as c:
        c.start_all()
        stranger_cluster = LocalCluster(ctx, 1, peers=False, name="stranger")
        stranger = stranger_cluster.daemons[0]
        stranger_cluster.edit(stranger, lambda cfg: cfg["consensus"]["raft"].update(wait_for_leader_timeout="3s"))
        r = ctx.run("daemon", "--config", stranger.folder, "--bootstrap", c.daemons[0].address, timeout=60)
        expect(r.returncode != 0, "a peer without the secret joined")
        expect("secret" in r.stderr, r.stderr)
        status, body = c.daemons[0].api("GET", "/id")
        expect(stranger.id not in json.loads(body)["cluster_peers"], body)
        expect("secret" in c.daemons[0].log(), "the cluster's log does not say why it refused")


def test_without_a_majority_the_peer_exits_saying_how_many_it_reached(ctx):
    with LocalCluster(ctx, 3) as c:
        d = c.daemons[0]
        c.edit(d, lambda cfg: cfg["consensus"]["raft"].update(wait_for_leader_timeout="2s"))
        r = ctx.run("daemon", "--config", d.folder, timeout=60)
        expect(r.returncode != 0, "started without a majority")
        expect("reached 0 of 2 other peers" in r.stderr, r.stderr)


def test_pin_add_from_standard_input_pins_many_cids(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        cids = make_cids(25000, seed=6)
        r = c.daemons[1].cli("pin", "add", "-", stdin="\n".join(cids) + "\n", timeout=120)
        expect(r.returncode == 0 and "pinned 25000 CIDs" in r.stdout, r.stdout + r.stderr)
        expect(set(cids) <= c.daemons[1].pin_cids(), "not every CID is in the pinset")
        all_live_have(c, cids, timeout=60)


def test_pin_add_of_pins_that_name_an_allocation_splits_entries_and_the_cluster_goes_on(ctx):
    # With replication factor 1 every pin names its peer: 10,000 of them (one `pin add -`
    # request) encode to over 1 MiB, more than a peer link's frame holds. Such a request used
    # to become one Raft entry no follower could receive, and no later change committed.
    with LocalCluster(ctx, 3) as c:
        def one_copy(cfg):  # allocated by tag, which needs no IPFS to measure
            cfg["cluster"].update(replication_factor_min=1, replication_factor_max=1, monitor_ping_interval="1s")
            cfg["allocator"]["balanced"]["allocate_by"] = ["tag:group"]
        for d in c.daemons:
            c.edit(d, one_copy)
        c.start_all()
        leader = c.leader(20)
        follower = next(d for d in c.daemons if d is not leader)

        def peers_with_tags():  # what the allocator picks from
            status, body = leader.api("GET", "/monitor/metrics/tag:group")
            return len(json.loads(body)) if status == 200 else 0
        wait_until(lambda: peers_with_tags() == 3, 20, "every peer's tag metric")
        before = last_log_index(leader)
        every = []
        for i, d in enumerate((leader, follower)):  # proposed there, and forwarded to the leader
            cids = make_cids(20000, seed=60 + i)
            r = d.cli("pin", "add", "-", stdin="\n".join(cids) + "\n", timeout=120)
            expect(r.returncode == 0 and "pinned 20000 CIDs" in r.stdout, f"peer {d.index}: {r.stdout}{r.stderr}")
            every += cids
        used = last_log_index(leader) - before
        expect(used > 4, f"4 requests of 10,000 pins took {used} Raft entries: none was split")
        one = pin(follower, make_cids(1, seed=62)[0])
        all_live_have(c, every + [one], timeout=60)


def test_recover_with_a_peer_down_lists_what_was_recovered_and_names_the_peer_that_was_not(ctx):
    # Pins in error (IPFS is a closed port); one follower is killed. The answer lists the pins
    # the live peers recovered and ends with the dead peer's failure (it used to drop failures
    # whenever some peer had recovered something, and exit 0).
    with LocalCluster(ctx, 3) as c:
        closed = f"/ip4/127.0.0.1/tcp/{free_port()}"
        for d in c.daemons:
            c.edit(d, lambda cfg: cfg["ipfs_connector"]["ipfshttp"].update(node_multiaddress=closed))
        c.start_all()
        leader = c.leader(20)
        cids = make_cids(3, seed=80)
        for cid in cids:
            pin(leader, cid)

        def in_error():
            status, body = leader.api("GET", "/pins?local=true&filter=pin_error")
            return {json.loads(line)["cid"] for line in body.splitlines() if line} if status == 200 else set()
        wait_until(lambda: in_error() == set(cids), 60, "the 3 pins in error on the leader")
        dead = next(d for d in c.daemons if d is not leader)
        dead.kill()
        r = leader.cli("recover", timeout=60)
        expect(r.returncode != 0, f"a recovery that missed a peer exits 0: {r.stdout}")
        expect(dead.id in r.stderr, f"the peer that was not reached is not named: {r.stderr}")
        expect("recover failed on 1 of 3 peer(s), the others did it" in r.stderr, r.stderr)
        expect(set(re.findall(r"bafk[a-z2-7]+", r.stdout)) == set(cids), r.stdout)
        # A sync names each failure too (here every peer's IPFS is a closed port).
        r = leader.cli("sync", timeout=60)
        expect(r.returncode == 2 and "sync failed on every peer (3)" in r.stderr and dead.id in r.stderr,
               r.stdout + r.stderr)

def test_a_recover_that_fails_on_the_asked_peer_is_its_cluster_error_entry_beside_the_others(ctx):
    # As IPFS Cluster: POST /pins/{cid}/recover answers 200 with the asked peer's failure as its
    # cluster_error entry (it answered 500 and hid the other members' outcome); with local=true
    # that failure is the answer.
    with LocalCluster(ctx, 2) as c:
        failing, other = c.daemons
        failing.start(env={"CLUSTERPIN_FAULT": "recover-fails"})
        other.start()
        for d in c.daemons:
            d.wait_ready()
        c.leader(20)
        cid = make_cids(1, seed=81)[0]
        pin(failing, cid)
        status, body = failing.api("POST", f"/pins/{cid}/recover")
        expect(status == 200, f"{status} {body}")
        peer_map = json.loads(body)["peer_map"]
        expect(set(peer_map) == {failing.id, other.id}, body)
        mine = peer_map[failing.id]
        expect(mine["status"] == "cluster_error" and "fault injection" in mine["error"], body)
        expect(peer_map[other.id]["status"] != "cluster_error", body)
        status, body = failing.api("POST", f"/pins/{cid}/recover?local=true")
        expect(status == 500 and "fault injection" in body, f"{status} {body}")
        # The CLI prints the status with the failure and exits 2, naming it on standard error.
        r = failing.cli("recover", cid)
        expect(r.returncode == 2 and "CLUSTER_ERROR" in r.stdout, r.stdout + r.stderr)
        expect(f"{cid}: not recovered on " in r.stderr and "fault injection" in r.stderr, r.stderr)
        r = other.cli("recover", cid)
        expect(r.returncode == 2 and "fault injection" in r.stderr, r.stdout + r.stderr)


def test_pins_lists_the_cids_a_member_is_still_unpinning_after_they_left_the_pinset(ctx):
    # A CID removed from the pinset whose unpin cannot finish on the peer that held it (its IPFS
    # is a closed port) is listed by GET /pins after the pinset, with that member's status, as
    # IPFS Cluster's StatusAll lists what each peer tracks: `status --filter unpin_error` never
    # showed a failed unpin. The pinset's CIDs are still listed once each; a member that is down
    # does not fail the listing.
    with LocalCluster(ctx, 3) as c:
        closed = f"/ip4/127.0.0.1/tcp/{free_port()}"

        def setup(cfg):  # allocated by tag, which needs no IPFS to measure
            cfg["ipfs_connector"]["ipfshttp"]["node_multiaddress"] = closed
            cfg["cluster"]["monitor_ping_interval"] = "1s"
            cfg["allocator"]["balanced"]["allocate_by"] = ["tag:group"]
        for d in c.daemons:
            c.edit(d, setup)
        c.start_all()
        leader = c.leader(20)
        kept = make_cids(3, seed=95)
        for cid in kept:
            pin(leader, cid)
        # One copy, on a follower; the leader asks.
        holder = next(d for d in c.daemons if d is not leader)
        asker, third = leader, next(d for d in c.daemons if d not in (leader, holder))

        def peers_with_tags():
            status, body = leader.api("GET", "/monitor/metrics/tag:group")
            return len(json.loads(body)) if status == 200 else 0
        wait_until(lambda: peers_with_tags() == 3, 20, "every peer's tag metric")
        leaving = pin(leader, make_cids(1, seed=96)[0], "--replication", "1", "--allocations", holder.id)
        status, body = leader.api("GET", f"/allocations/{leaving}")
        expect(status == 200 and json.loads(body)["allocations"] == [holder.id], f"{status} {body}")

        def holder_status():
            status, body = holder.api("GET", f"/pins/{leaving}?local=true")
            return json.loads(body)["peer_map"][holder.id]["status"] if status == 200 else None
        wait_until(lambda: holder_status() == "pin_error", 30, "the pin in error on the peer holding it")
        r = leader.cli("pin", "rm", leaving)
        expect(r.returncode == 0, r.stderr)
        wait_until(lambda: holder_status() == "unpin_error", 30, "the unpin in error on the peer holding it")

        def listed(daemon, query):
            status, body = daemon.api("GET", "/pins" + query)
            expect(status in (200, 204), f"GET /pins{query}: {status} {body}")
            return [json.loads(line) for line in body.splitlines() if line.strip()]

        # Asked of a peer that holds no record of it: the holder's answer.
        def unpin_errors():
            return [e for e in listed(asker, "?filter=unpin_error") if e["cid"] == leaving]
        entries = wait_until(unpin_errors, 30, "GET /pins?filter=unpin_error to list the failed unpin")
        expect(len(entries) == 1, f"listed {len(entries)} times: {entries}")
        peer_map = entries[0]["peer_map"]
        expect(set(peer_map) == {holder.id} and peer_map[holder.id]["status"] == "unpin_error",
               f"{peer_map}")
        expect("unreachable" in peer_map[holder.id]["error"], f"{peer_map}")
        expect(entries[0]["allocations"] == [], f"a CID out of the pinset shows allocations: {entries[0]}")
        # The unpin statuses together, as `status --filter` takes them.
        wait_until(lambda: any(e["cid"] == leaving for e in listed(asker, "?filter=unpin_queued,unpinning,unpin_error")),
                   30, "the unpin statuses to list the CID")

        # Unfiltered: each pinset CID once, then the leaving CID once, with every member's status.
        entries = listed(asker, "")
        cids = [e["cid"] for e in entries]
        expect(sorted(cids) == sorted(kept + [leaving]), f"listed {cids}, pinset {kept}, leaving {leaving}")
        expect(cids[:3] == sorted(cids[:3]) and cids[-1] == leaving, f"not the pinset, then what left it: {cids}")
        peer_map = entries[-1]["peer_map"]
        expect(set(peer_map) == {d.id for d in c.daemons}, f"{peer_map}")
        expect(peer_map[holder.id]["status"] in ("unpin_error", "unpin_queued", "unpinning"), f"{peer_map}")
        expect(all(peer_map[d.id]["status"] == "unpinned" for d in (asker, third)), f"{peer_map}")

        # local=true: only this peer's leaving CIDs.
        expect(not any(e["cid"] == leaving for e in listed(asker, "?local=true")), "the asker lists the holder's")
        wait_until(lambda: any(e["cid"] == leaving and set(e["peer_map"]) == {holder.id}
                               for e in listed(holder, "?local=true&filter=unpin_error")),
                   30, "the holder to list its own failed unpin with local=true")

        # The CLI without CIDs goes through the listing.
        def cli_lists():
            r = asker.cli("status", "--filter", "unpin_error")
            return r.returncode == 0 and leaving in r.stdout and "UNPIN_ERROR" in r.stdout.upper() and r
        r = wait_until(cli_lists, 30, "`status --filter unpin_error` to print the failed unpin")
        expect(not any(cid in r.stdout for cid in kept), r.stdout)

        # A member down: the listing still ends and still holds the holder's failed unpin.
        third.kill()
        entries = wait_until(unpin_errors, 30, "the failed unpin listed with a member down")
        expect(entries[0]["peer_map"][holder.id]["status"] == "unpin_error", f"{entries}")
        cids = [e["cid"] for e in listed(asker, "")]
        expect(sorted(cids) == sorted(kept + [leaving]), f"with a member down: {cids}")


def last_log_index(daemon):
    """The last Raft log index in the peer's raft.db (read-only while the daemon runs)."""
    path = os.path.join(daemon.folder, "clusterpin-data", "raft.db")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT COALESCE(MAX(idx), 0) FROM entries").fetchone()[0]
    finally:
        db.close()


def test_concurrent_pins_share_raft_entries_and_each_is_answered_once_applied_there(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        leader = c.leader(20)
        follower = next(d for d in c.daemons if d is not leader)
        cids = make_cids(256, seed=11)
        before = last_log_index(leader)
        # 64 keep-alive clients (48 at the leader, 16 at a follower, which forwards to the
        # leader) each send a request before any answer is read, four times over.
        conns = [http.client.HTTPConnection("127.0.0.1", (leader if i < 48 else follower).api_port,
                                            timeout=60) for i in range(64)]
        failures = []
        for first in range(0, len(cids), 64):
            batch = cids[first:first + 64]
            for conn, cid in zip(conns, batch):
                conn.request("POST", f"/pins/{cid}")
            for i, (conn, cid) in enumerate(zip(conns, batch)):
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    failures.append(f"{cid}: {r.status} {body[:200]!r}")
                    continue
                # Answered once applied at the peer that was asked: it shows the pin at once.
                d = leader if i < 48 else follower
                status, _ = d.api("GET", f"/allocations/{cid}")
                if status != 200:
                    failures.append(f"{cid} answered but not shown by peer {d.index}: {status}")
        for conn in conns:
            conn.close()
        expect(not failures, f"{len(failures)} failed: {failures[:5]}")
        used = last_log_index(leader) - before
        expect(0 < used < len(cids), f"{len(cids)} concurrent pins took {used} Raft entries")
        all_live_have(c, cids)


def test_a_retried_pin_whose_first_attempt_committed_does_not_undo_a_later_unpin(ctx):
    # The leader loses its answer to a follower's forwarded pin after the entry applied; the
    # follower retries the same request 3 s later. Meanwhile the CID is unpinned through the
    # leader: the retry commits again, but changes nothing, and the pin add succeeds.
    with LocalCluster(ctx, 3) as c:
        def slow_retry(cfg):
            cfg["consensus"]["raft"]["commit_retry_delay"] = "3s"
        for d in c.daemons:
            c.edit(d, slow_retry)
            d.start(env={"CLUSTERPIN_FAULT": "commit-answer-lost"})
        for d in c.daemons:
            d.wait_ready()
        leader = c.leader(20)
        follower = next(d for d in c.daemons if d is not leader)
        cid = make_cids(1, seed=91)[0]
        adding = subprocess.Popen([ctx.binary, "pin", "add", cid, "--host", follower.host],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: leader.api("GET", f"/allocations/{cid}")[0] == 200, 10,
                   "the first attempt to commit")
        r = leader.cli("pin", "rm", cid)
        expect(r.returncode == 0, r.stderr)
        expect(adding.poll() is None, "the retry came before the unpin: the test proves nothing")
        out, err = adding.communicate(timeout=60)
        expect(adding.returncode == 0, f"pin add exited {adding.returncode}: {out}{err}")
        # The leader applied the retried entry before answering, the follower before its client.
        for d in (leader, follower):
            expect(d.api("GET", f"/allocations/{cid}")[0] == 404,
                   f"peer {d.index} holds {cid} again after its unpin")
        expect("repeats a request applied before" in follower.log(), follower.log()[-2000:])


def test_restart_without_leaving_keeps_state_and_rejoins(ctx):
    with LocalCluster(ctx, 3) as c:
        c.start_all()
        cids = [pin(c.daemons[0], cid) for cid in make_cids(3, seed=7)]
        for d in c.daemons:
            expect(d.stop() == 0, f"peer {d.index} did not stop cleanly")
        # A clean stop leaves a human-readable backup of the pinset.
        backups = os.path.join(c.daemons[0].folder, "backups")
        files = sorted(os.listdir(backups)) if os.path.isdir(backups) else []
        expect(files, "no backup written on shutdown")
        backup = json.load(open(os.path.join(backups, files[-1])))
        expect({p["cid"] for p in backup["pins"]} >= set(cids), "the backup misses pins")
        c.start_all()
        all_live_have(c, cids)


def test_rest_api_answers_bad_input_with_clear_4xx(ctx):
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0].start()
        d.wait_ready()
        status, body = d.api("POST", "/pins/not-a-cid")
        expect(status == 400 and "multibase" in json.loads(body)["message"], body)
        status, body = d.api("GET", "/allocations/" + make_cids(1, seed=8)[0])
        expect(status == 404 and json.loads(body) == {"code": 404, "message": "pin is not part of the pinset"}, body)
        status, body = d.api("POST", "/pins/" + make_cids(1, seed=9)[0] + "?mode=deep")
        expect(status == 400 and "mode" in body, body)
        status, body = d.api("POST", "/pins/" + make_cids(1, seed=9)[0] + "?replication-min=3&replication-max=2")
        expect(status == 400 and "greater than max" in body, body)
        status, _ = d.api("GET", "/allocations")
        expect(status == 204, f"empty stream answered {status}")
        status, _ = d.api("GET", "/health")
        expect(status == 204, f"health answered {status}")


if __name__ == "__main__":
    run(globals())
