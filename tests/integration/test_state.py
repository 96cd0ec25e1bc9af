"""Process tests of the offline state tools: `clusterpin state export|import|cleanup` on the
data folder of real daemons. They prove that export gives every acknowledged pin, that the tools
refuse while a daemon holds the folder, that an imported folder is served by a daemon, that a bad
import line changes nothing, and that cleanup keeps a backup and rotates old folders."""
import fcntl
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, free_port, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402


def pin_some(daemon, cids):
    for cid in cids:
        r = daemon.cli("pin", "add", "--name", f"n-{cid[-6:]}", cid)
        expect(r.returncode == 0, f"pin add {cid}: {r.stderr}")


def export_cids(ctx, folder):
    r = ctx.run("state", "export", "--config", folder)
    expect(r.returncode == 0, f"export: {r.stderr}")
    return [json.loads(line)["cid"] for line in r.stdout.splitlines() if line.strip()]


def restart(daemon):
    """Starts a daemon whose log already holds an earlier run and waits for this run's READY."""
    seen = daemon.log().count("is READY")
    daemon.start()
    wait_until(lambda: daemon.log().count("is READY") > seen or not daemon.running(), 30,
               f"daemon {daemon.index} to be ready again")
    expect(daemon.running(), f"daemon exited: {daemon.log()[-2000:]}")


def started_with_pins(ctx, name, cids):
    """A single-peer cluster that pinned `cids` and was stopped cleanly."""
    c = LocalCluster(ctx, 1, peers=False, name=name)
    d = c.daemons[0].start()
    d.wait_ready()
    pin_some(d, cids)
    expect(d.stop() == 0, f"daemon exit code: {d.log()[-1000:]}")
    return c, d


def test_export_gives_every_pin_and_refuses_while_the_daemon_runs(ctx):
    cids = make_cids(25, seed=1)
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0].start()
        d.wait_ready()
        pin_some(d, cids)
        r = ctx.run("state", "export", "--config", d.folder)
        expect(r.returncode != 0 and "daemon is running" in r.stderr and r.stdout == "",
               f"export beside a daemon: rc={r.returncode} {r.stderr}")
        expect(d.stop() == 0, d.log()[-1000:])
        out = os.path.join(ctx.scratch, "pins.ndjson")
        r = ctx.run("state", "export", "--config", d.folder, "--file", out)
        expect(r.returncode == 0, r.stderr)
        lines = open(out).read().splitlines()
        pins = [json.loads(line) for line in lines]
        expect(sorted(p["cid"] for p in pins) == sorted(cids), f"exported {len(pins)} pins")
        expect(all(p["name"] == f"n-{p['cid'][-6:]}" for p in pins), lines[0])
        expect(export_cids(ctx, d.folder) == [p["cid"] for p in pins], "stdout export differs")


def test_imported_folder_is_served_by_a_new_daemon(ctx):
    cids = make_cids(30, seed=2)
    c, d = started_with_pins(ctx, "source", cids)
    with c:
        out = os.path.join(ctx.scratch, "pins.ndjson")
        r = ctx.run("state", "export", "--config", d.folder, "--file", out)
        expect(r.returncode == 0, r.stderr)
    with LocalCluster(ctx, 1, peers=False, name="target") as t:
        d2 = t.daemons[0]
        # Without a terminal to ask on, import insists on --force and changes nothing.
        r = ctx.run("state", "import", "--config", d2.folder, out, stdin="y\n")
        expect(r.returncode != 0 and "--force" in r.stderr, r.stderr)
        expect(not os.path.exists(os.path.join(d2.folder, "clusterpin-data")), "import without --force wrote")
        r = ctx.run("state", "import", "--config", d2.folder, "--force", out)
        expect(r.returncode == 0 and "imported 30 pins" in r.stderr, r.stderr)
        d2.start()
        d2.wait_ready()
        r = d2.cli("pin", "ls")
        expect(r.returncode == 0 and all(cid in r.stdout for cid in cids), r.stdout + r.stderr)
        # The log goes on after the imported snapshot: new pins commit and survive a restart.
        extra = make_cids(1, seed=3)[0]
        pin_some(d2, [extra])
        expect(d2.stop() == 0, d2.log()[-1000:])
        restart(d2)
        wait_until(lambda: set(cids) | {extra} <= d2.pin_cids(), 20, "every pin after restart")
        expect(d2.stop() == 0, d2.log()[-1000:])


def test_pin_update_keeps_the_factors_an_imported_pin_was_stored_with(ctx):
    # A pin imported without replication factors is stored with 0/0: the cluster's defaults,
    # whatever they are. `pin update` copies the factors as they are stored, as IPFS Cluster's
    # PinUpdate does; it used to store the defaults of the day in the new pin.
    old, new = make_cids(2, seed=21)
    with LocalCluster(ctx, 1, peers=False, name="factors") as c:
        d = c.daemons[0]
        pins = os.path.join(ctx.scratch, "unset.ndjson")
        with open(pins, "w") as f:
            f.write(json.dumps({"cid": old}) + "\n")
        r = ctx.run("state", "import", "--config", d.folder, "--force", pins)
        expect(r.returncode == 0, r.stderr)
        d.start()
        d.wait_ready()

        def factors(cid):
            status, body = d.api("GET", f"/allocations/{cid}")
            expect(status == 200, f"{status} {body}")
            p = json.loads(body)
            return p["replication_factor_min"], p["replication_factor_max"]
        expect(factors(old) == (0, 0), f"imported as {factors(old)}")
        r = d.cli("pin", "update", old, new)
        expect(r.returncode == 0, r.stderr)
        expect(factors(new) == (0, 0), f"updated to {factors(new)}")


def test_a_peer_joining_an_imported_cluster_receives_the_pins(ctx):
    cids = make_cids(40, seed=8)
    lines = "".join(json.dumps({"cid": cid, "name": "imported"}) + "\n" for cid in cids)
    with LocalCluster(ctx, 2, peers=False) as c:
        a, b = c.daemons
        r = ctx.run("state", "import", "--config", a.folder, "--force", stdin=lines)
        expect(r.returncode == 0, r.stderr)
        a.start()
        a.wait_ready()
        b.start("--bootstrap", a.address)
        b.wait_ready()
        # The imported pins live in a Raft snapshot, not in log entries: the joiner gets them
        # through InstallSnapshot.
        wait_until(lambda: set(cids) <= b.pin_cids(), 30, "the joiner to list the imported pins")
        extra = make_cids(1, seed=9)[0]
        pin_some(b, [extra])
        wait_until(lambda: extra in a.pin_cids(), 20, "a pin made on the joiner to reach the first peer")
        c.stop_all()



def test_a_joiner_keeps_waiting_while_a_large_snapshot_arrives(ctx):
    # 200,000 pins make a snapshot that takes longer to send and install than the joiner's 5 s
    # wait_for_leader_timeout: the wait goes on while the transfer makes progress.
    cids = make_cids(200_000, seed=10)
    lines = "".join(json.dumps({"cid": cid}) + "\n" for cid in cids)
    with LocalCluster(ctx, 2, peers=False, name="big") as c:
        a, b = c.daemons
        r = ctx.run("state", "import", "--config", a.folder, "--force", stdin=lines, timeout=300)
        expect(r.returncode == 0, r.stderr)
        c.edit(b, lambda cfg: cfg["consensus"]["raft"].update(wait_for_leader_timeout="5s"))
        a.start()
        a.wait_ready(timeout=120)
        b.start("--bootstrap", a.address)
        t0 = time.monotonic()
        b.wait_ready(timeout=300)
        print("joiner ready after", round(time.monotonic() - t0, 2), "s")
        status, body = b.api("GET", "/id")
        expect(status == 200 and len(json.loads(body)["cluster_peers"]) == 2, body)
        expect(len(b.pin_cids()) == len(cids), "the joiner does not list every imported pin")

def test_founding_peers_importing_the_same_file_form_one_cluster(ctx):
    cids = make_cids(12, seed=10)
    src = os.path.join(ctx.scratch, "pins.ndjson")
    open(src, "w").write("".join(json.dumps({"cid": cid}) + "\n" for cid in cids))
    with LocalCluster(ctx, 3) as c:
        for d in c.daemons:
            r = ctx.run("state", "import", "--config", d.folder, "--force", src)
            expect(r.returncode == 0, r.stderr)
        c.start_all()
        extra = make_cids(1, seed=11)[0]
        pin_some(c.daemons[1], [extra])
        for d in c.daemons:
            wait_until(lambda d=d: set(cids) | {extra} <= d.pin_cids(), 20, f"peer {d.index} to list every pin")
        c.stop_all()


def test_import_from_stdin_with_force(ctx):
    cids = make_cids(3, seed=4)
    lines = "".join(json.dumps({"cid": cid, "name": "x"}) + "\n" for cid in cids)
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0]
        r = ctx.run("state", "import", "--config", d.folder, "--force", stdin=lines)
        expect(r.returncode == 0 and "imported 3 pins" in r.stderr, r.stderr)
        expect(sorted(export_cids(ctx, d.folder)) == sorted(cids), "stdin import")


def test_bad_import_line_is_named_and_changes_nothing(ctx):
    cids = make_cids(5, seed=5)
    c, d = started_with_pins(ctx, "peer", cids)
    with c:
        r = ctx.run("state", "export", "--config", d.folder)
        expect(r.returncode == 0, r.stderr)
        good = r.stdout.splitlines()
        bad = os.path.join(ctx.scratch, "bad.ndjson")
        open(bad, "w").write("\n".join(good[:2] + ['{"cid": "not-a-cid"}'] + good[2:]) + "\n")
        backups_before = sorted(glob.glob(os.path.join(d.folder, "backups", "*")))
        r = ctx.run("state", "import", "--config", d.folder, "--force", bad)
        expect(r.returncode != 0 and "line 3" in r.stderr and "nothing was changed" in r.stderr, r.stderr)
        expect(sorted(export_cids(ctx, d.folder)) == sorted(cids), "state changed by a failed import")
        expect(not glob.glob(os.path.join(d.folder, "clusterpin-data.*")), "folders left behind")
        expect(sorted(glob.glob(os.path.join(d.folder, "backups", "*"))) == backups_before,
               "backup written by a failed import")


def test_cleanup_keeps_a_backup_and_the_next_daemon_starts_empty(ctx):
    cids = make_cids(8, seed=6)
    c, d = started_with_pins(ctx, "peer", cids)
    with c:
        r = ctx.run("state", "cleanup", "--config", d.folder, stdin="")
        expect(r.returncode != 0 and "--force" in r.stderr, r.stderr)
        expect(os.path.exists(os.path.join(d.folder, "clusterpin-data")), "cleanup without --force moved data")
        r = ctx.run("state", "cleanup", "--config", d.folder, "--force")
        expect(r.returncode == 0, r.stderr)
        expect(not os.path.exists(os.path.join(d.folder, "clusterpin-data")), "data folder still there")
        expect(os.path.exists(os.path.join(d.folder, "clusterpin-data.old.0", "state.db")), "no .old.0")
        backups = glob.glob(os.path.join(d.folder, "backups", "pinset-*.json"))
        expect(len(backups) >= 1, "no backup")
        doc = json.load(open(sorted(backups)[-1]))
        expect(sorted(p["cid"] for p in doc["pins"]) == sorted(cids) and doc["cluster_id"]
               and doc["applied_index"] > 0, json.dumps(doc)[:500])
        restart(d)
        expect(d.pin_cids() == set(), "a cleaned peer still lists pins")
        r = ctx.run("state", "cleanup", "--config", d.folder, "--force")
        expect(r.returncode != 0 and "daemon is running" in r.stderr, r.stderr)
        expect(d.stop() == 0, d.log()[-1000:])


def test_failed_starts_of_an_empty_folder_do_not_rotate_out_the_backup_cleanup_wrote(ctx):
    cids = make_cids(3, seed=56)
    c, d = started_with_pins(ctx, "peer", cids)
    with c:
        c.edit(d, lambda cfg: cfg["consensus"]["raft"].__setitem__("backups_rotate", 2))
        r = ctx.run("state", "cleanup", "--config", d.folder, "--force")
        expect(r.returncode == 0, r.stderr)
        before = sorted(glob.glob(os.path.join(d.folder, "backups", "pinset-*.json")))
        nowhere = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{d.id}"
        for _ in range(2):
            r = ctx.run("daemon", "--config", d.folder, "--bootstrap", nowhere, timeout=60)
            expect(r.returncode != 0, r.stderr)
        after = sorted(glob.glob(os.path.join(d.folder, "backups", "pinset-*.json")))
        expect(after == before, f"backups before {before}, after {after}")
        doc = json.load(open(after[-1]))
        expect(sorted(p["cid"] for p in doc["pins"]) == sorted(cids), json.dumps(doc)[:300])


def test_rotation_keeps_at_most_backups_rotate(ctx):
    cids = make_cids(2, seed=7)
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0]
        c.edit(d, lambda cfg: cfg["consensus"]["raft"].__setitem__("backups_rotate", 2))
        src = os.path.join(ctx.scratch, "pins.ndjson")
        for i in range(4):
            open(src, "w").write("\n".join(json.dumps({"cid": cid, "name": f"round-{i}"}) for cid in cids) + "\n")
            r = ctx.run("state", "import", "--config", d.folder, "--force", src)
            expect(r.returncode == 0, r.stderr)
            r = ctx.run("state", "cleanup", "--config", d.folder, "--force")
            expect(r.returncode == 0, r.stderr)
        backups = sorted(glob.glob(os.path.join(d.folder, "backups", "pinset-*.json")))
        expect(len(backups) == 2, f"backups kept: {backups}")
        olds = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d.folder, "clusterpin-data.old.*")))
        expect(olds == ["clusterpin-data.old.0", "clusterpin-data.old.1"], f"old folders: {olds}")
        # The newest backup is the last round's pins.
        doc = json.load(open(backups[-1]))
        expect({p["name"] for p in doc["pins"]} == {"round-3"}, json.dumps(doc)[:300])


def test_cleanup_and_import_reset_a_peer_whose_state_db_is_unreadable(ctx):
    cids = make_cids(4, seed=60)
    c, d = started_with_pins(ctx, "peer", cids)
    with c:
        data = os.path.join(d.folder, "clusterpin-data")
        garbage = os.urandom(16384)

        def damage():
            with open(os.path.join(data, "state.db"), "wb") as f:
                f.write(garbage)

        damage()
        backups = sorted(glob.glob(os.path.join(d.folder, "backups", "*")))
        # While the lock is held (a daemon, another tool) it still refuses and changes nothing.
        with open(os.path.join(d.folder, "clusterpin.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = ctx.run("state", "cleanup", "--config", d.folder, "--force")
            expect(r.returncode != 0 and "clusterpin.lock" in r.stderr, r.stderr)
            expect(os.path.exists(data) and not os.path.exists(data + ".old.0"), "moved under a lock")
        r = ctx.run("state", "cleanup", "--config", d.folder, "--force")
        expect(r.returncode == 0, r.stderr)
        expect("state.db cannot be read" in r.stderr and "NO backup" in r.stderr
               and "clusterpin-data.old.0" in r.stderr, r.stderr)
        expect(not os.path.exists(data), "data folder still there")
        kept = open(os.path.join(data + ".old.0", "state.db"), "rb").read()
        expect(kept == garbage, "the damaged state.db was not kept as it was")
        expect(sorted(glob.glob(os.path.join(d.folder, "backups", "*"))) == backups, "a backup was written")
        restart(d)
        expect(d.pin_cids() == set(), "a cleaned peer still lists pins")
        expect(d.stop() == 0, d.log()[-1000:])
        # import does the same, and the imported state is served.
        damage()
        src = os.path.join(ctx.scratch, "pins.ndjson")
        open(src, "w").write("".join(json.dumps({"cid": cid}) + "\n" for cid in cids))
        r = ctx.run("state", "import", "--config", d.folder, "--force", src)
        expect(r.returncode == 0 and "NO backup" in r.stderr and "imported 4 pins" in r.stderr, r.stderr)
        expect(open(os.path.join(data + ".old.0", "state.db"), "rb").read() == garbage, "not kept")
        expect(sorted(export_cids(ctx, d.folder)) == sorted(cids), "import after a damaged state.db")


def test_import_counts_pins_stored_not_lines_with_a_repeated_cid(ctx):
    a, b = make_cids(2, seed=61)
    lines = [{"cid": a, "name": "first"}, {"cid": b}, {"cid": a, "name": "second"},
             {"cid": a, "name": "last"}]
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0]
        r = ctx.run("state", "import", "--config", d.folder, "--force",
                    stdin="".join(json.dumps(x) + "\n" for x in lines))
        expect(r.returncode == 0 and "imported 2 pins" in r.stderr and "2 lines repeated" in r.stderr,
               r.stderr)
        r = ctx.run("state", "export", "--config", d.folder)
        pins = {p["cid"]: p["name"] for p in map(json.loads, r.stdout.splitlines())}
        expect(pins == {a: "last", b: ""}, str(pins))



def test_a_state_db_behind_the_snapshot_is_restored_from_the_snapshot_file(ctx):
    # state.db replaced by an older copy (or one that lost writes) while raft.db holds a later
    # snapshot and has compacted the entries before it: the peer used to start at the
    # snapshot's index and never apply them, serving a pinset without those pins.
    first, later = make_cids(5, seed=91), make_cids(60, seed=92)
    with LocalCluster(ctx, 1, peers=False) as c:
        d = c.daemons[0]
        c.edit(d, lambda cfg: cfg["consensus"]["raft"].update(snapshot_threshold=20, trailing_logs=5))
        d.start()
        d.wait_ready()
        pin_some(d, first)
        expect(d.stop() == 0, d.log()[-1000:])
        data = os.path.join(d.folder, "clusterpin-data")
        with open(os.path.join(data, "state.db"), "rb") as f:
            old_state = f.read()
        expect(not os.path.exists(os.path.join(data, "state.db-wal"))
               or os.path.getsize(os.path.join(data, "state.db-wal")) == 0,
               "a clean stop left state.db's WAL with frames")
        restart(d)
        pin_some(d, later)
        snapshots = os.path.join(data, "snapshots")
        wait_until(lambda: any(n.startswith("state-") for n in os.listdir(snapshots)), 20, "a snapshot")
        d.kill()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(os.path.join(data, "state.db" + suffix)):
                os.remove(os.path.join(data, "state.db" + suffix))
        with open(os.path.join(data, "state.db"), "wb") as f:
            f.write(old_state)
        restart(d)
        expect("restored it from" in d.log()[d.log_offset:], d.log()[-2000:])
        expect(d.pin_cids() == set(first + later), f"{len(d.pin_cids())} of {len(first + later)} pins")
        # Without the snapshot's file there is nothing to rebuild from: refused, naming the way.
        d.kill()
        with open(os.path.join(data, "state.db"), "wb") as f:
            f.write(old_state)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(os.path.join(data, "state.db" + suffix)):
                os.remove(os.path.join(data, "state.db" + suffix))
        for name in os.listdir(snapshots):
            os.remove(os.path.join(snapshots, name))
        r = ctx.run("daemon", "--config", d.folder, timeout=30)
        expect(r.returncode != 0 and "is missing" in r.stderr and "state cleanup" in r.stderr, r.stderr)


def leave_a_hot_journal(path):
    """A copy of a database at `path` with the rollback journal a kill inside a write leaves
    (as one inside the restore's rewrite of its private copy would): SQLite takes such a journal
    as hot and rolls its pages back into whatever file next has that name."""
    import sqlite3
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE filler(x)")
    db.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(500),) for _ in range(2000)])
    db.commit()
    db.close()
    child = os.fork()
    if child == 0:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA cache_size=2")
        db.execute("BEGIN")
        db.execute("DELETE FROM filler WHERE rowid % 2 = 0")
        os._exit(0)  # no commit, no rollback: the journal stays
    os.waitpid(child, 0)
    expect(os.path.getsize(path + "-journal") > 0, "no journal left")


def test_a_journal_left_beside_a_restore_copy_does_not_reach_the_next_snapshot_install(ctx):
    # A follower killed while rewriting its private copy of a received snapshot
    # (state.db.restore) left the copy's rollback journal; the next install copied a new
    # snapshot over the same name and SQLite rolled the old journal into it: a corrupt state.db.
    with LocalCluster(ctx, 3) as c:
        for d in c.daemons:
            c.edit(d, lambda cfg: cfg["consensus"]["raft"].update(snapshot_threshold=20, trailing_logs=5))
        c.start_all()
        leader = json.loads(c.daemons[0].api("GET", "/id")[1])["raft_leader"]
        lagging = next(d for d in c.daemons if d.id != leader)
        live = [d for d in c.daemons if d is not lagging]
        lagging.kill()
        leave_a_hot_journal(os.path.join(lagging.folder, "clusterpin-data", "state.db.restore"))
        cids = make_cids(60, seed=93)
        for i, cid in enumerate(cids):
            r = live[i % 2].cli("pin", "add", cid)
            expect(r.returncode == 0, r.stderr)
        snapshots = os.path.join(live[0].folder, "clusterpin-data", "snapshots")
        wait_until(lambda: os.path.isdir(snapshots) and os.listdir(snapshots), 20, "a snapshot")
        restart(lagging)
        wait_until(lambda: lagging.pin_cids() == set(cids), 30, "the follower to hold every pin")
        state = os.path.join(lagging.folder, "clusterpin-data", "state.db")
        import sqlite3
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
        try:
            expect(db.execute("PRAGMA quick_check").fetchone()[0] == "ok", "state.db is corrupt")
        finally:
            db.close()

run(globals())
