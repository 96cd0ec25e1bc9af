"""Load: a million distinct CIDs through `clusterpin pin add -` into a 3-peer cluster, then
`clusterpin pin ls` on every peer must list exactly that many, each CID once. Prints how long each
step took (no time limit is asserted). Suites 'process' and 'load'.
Usage: test_load.py CLUSTERPIN SOURCE_ROOT [--only TEST] [--count N]"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import LocalCluster, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402

COUNT = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else 1_000_000


def listed(ctx, daemon):
    """The CIDs `pin ls` prints on `daemon` (first column of each line), in order."""
    proc = subprocess.run([ctx.binary, "pin", "ls", "--host", daemon.host], capture_output=True,
                          text=True, timeout=1200)
    expect(proc.returncode == 0, f"pin ls on peer {daemon.index}: {proc.stderr[-2000:]}")
    return [line.split(" | ", 1)[0] for line in proc.stdout.splitlines() if line.strip()]


def test_a_million_cids_through_pin_add_stdin_are_listed_on_every_peer_in_bounded_memory(ctx):
    started = time.monotonic()
    cids = make_cids(COUNT, seed=900)
    text = "\n".join(cids) + "\n"
    print(f"  generated {COUNT} CIDs in {time.monotonic() - started:.1f}s", flush=True)
    with LocalCluster(ctx, 3) as c:
        # No IPFS daemon here: this measures the path into the cluster, with the default
        # configuration. Each peer holds the first 20,000 new pins in memory (they fail and retry
        # against the missing daemon); the rest wait in tracker.db's waiting list as pin_queued.
        c.start_all()
        t0 = time.monotonic()
        r = c.daemons[1].cli("pin", "add", "-", stdin=text, timeout=1800)
        expect(r.returncode == 0, r.stdout + r.stderr[-2000:])
        expect(r.stdout == f"pinned {COUNT} CIDs\n", repr(r.stdout))
        added = time.monotonic() - t0
        print(f"  pin add - of {COUNT} CIDs through a follower: {added:.1f}s "
              f"({COUNT / added:.0f} CIDs/s)", flush=True)
        wanted = set(cids)
        for d in c.daemons:
            t1 = time.monotonic()
            # Every peer has applied the batches once it lists the last CID; then count them all.
            wait_until(lambda d=d: d.api("GET", f"/allocations/{cids[-1]}")[0] == 200, 600,
                       f"peer {d.index} to apply the last batch")
            got = listed(ctx, d)
            took = time.monotonic() - t1
            print(f"  pin ls on peer {d.index}: {len(got)} pins in {took:.1f}s", flush=True)
            expect(len(got) == COUNT, f"peer {d.index} lists {len(got)} pins, not {COUNT}")
            expect(set(got) == wanted, f"peer {d.index} lists other CIDs than the ones added")
            rss = d.rss_mb()
            print(f"  peer {d.index} resident memory: {rss:.0f} MB", flush=True)
            # Bounded by the in-memory window, not by the million (holding every new pin in
            # memory took 1.3 GB per peer).
            expect(rss < 700, f"peer {d.index} holds {rss:.0f} MB after a million pins")
        print(f"  total with the cluster: {time.monotonic() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    run(globals())
