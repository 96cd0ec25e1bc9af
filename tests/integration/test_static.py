"""The static link (-Dstatic=true, the default of release builds): clusterpin must be one fully
static executable that needs no shared library at all. Checked three ways: ldd, the ELF headers
(no program interpreter, no DT_NEEDED), and running it inside an empty root directory that holds
nothing but the binary (a user namespace + chroot, or chroot as root): `--version`, `init`, and a
daemon on 127.0.0.1 that takes a pin from the CLI (also run inside) and stops on SIGTERM.
Usage: test_static.py CLUSTERPIN SOURCE_ROOT [--only TEST]"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import free_port, make_cids, wait_until  # noqa: E402
from harness import expect, run  # noqa: E402

PT_DYNAMIC, PT_INTERP, DT_NULL, DT_NEEDED = 2, 3, 0, 1


def elf_dynamic_facts(path):
    """(has a PT_INTERP segment, number of DT_NEEDED entries) of a 64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        data = f.read()
    expect(data[:4] == b"\x7fELF", f"{path} is not an ELF file")
    expect(data[4] == 2 and data[5] == 1, f"{path} is not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    interp = False
    needed = 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_INTERP:
            interp = True
        elif p_type == PT_DYNAMIC:
            for off in range(p_offset, p_offset + p_filesz, 16):
                tag, _ = struct.unpack_from("<qQ", data, off)
                if tag == DT_NULL:
                    break
                if tag == DT_NEEDED:
                    needed += 1
    return interp, needed


def test_ldd_says_not_a_dynamic_executable(ctx):
    ldd = shutil.which("ldd")
    expect(ldd is not None, "ldd is not installed (package libc-bin)")
    r = subprocess.run([ldd, ctx.binary], capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    expect("not a dynamic executable" in out, f"ldd {ctx.binary}:\n{out}")


def test_the_elf_headers_name_no_interpreter_and_no_shared_library(ctx):
    interp, needed = elf_dynamic_facts(ctx.binary)
    expect(not interp, "the binary asks for a program interpreter (ld-linux): it is dynamic")
    expect(needed == 0, f"the binary lists {needed} shared libraries (DT_NEEDED)")
    # The same reader sees a dynamic executable as one: the check can fail.
    interp, needed = elf_dynamic_facts(os.path.realpath(shutil.which("python3")))
    expect(interp and needed > 0, "the ELF reader does not recognise a dynamic executable")


def chroot_runner(root):
    """How to run a command inside `root`: a user namespace then chroot (unprivileged), else plain
    chroot as root. Fails, saying why, when neither is possible here."""
    tries = []
    unshare, chroot = shutil.which("unshare"), shutil.which("chroot") or "/usr/sbin/chroot"
    if unshare:
        tries.append([unshare, "--user", "--map-root-user", chroot, root])
    if os.geteuid() == 0:
        tries.append([chroot, root])
    reasons = []
    for prefix in tries:
        r = subprocess.run([*prefix, "/nothing-here"], capture_output=True, text=True, timeout=30)
        # chroot itself worked when it reports the missing program (exit 127), not a setup error.
        if r.returncode == 127 and "nothing-here" in r.stderr:
            return prefix
        reasons.append(f"{' '.join(prefix)}: exit {r.returncode}: {r.stderr.strip()}")
    raise AssertionError("cannot run anything inside an empty root here (no user namespaces and "
                         "not root): " + "; ".join(reasons or ["neither unshare nor root"]))


def test_it_runs_version_and_init_in_an_empty_root(ctx):
    root = ctx.folder("root")
    shutil.copy2(ctx.binary, os.path.join(root, "clusterpin"))
    expect(sorted(os.listdir(root)) == ["clusterpin"], "the root is not empty but for the binary")
    prefix = chroot_runner(root)
    # Control: a dynamic program cannot run there, so the root really offers no libraries.
    shutil.copy2(os.path.realpath(shutil.which("true")), os.path.join(root, "true"))
    r = subprocess.run([*prefix, "/true"], capture_output=True, text=True, timeout=30)
    expect(r.returncode != 0, "a dynamic program ran inside the empty root: it holds libraries")
    os.remove(os.path.join(root, "true"))

    r = subprocess.run([*prefix, "/clusterpin", "--version"], capture_output=True, text=True,
                       timeout=30, env={})
    expect(r.returncode == 0 and r.stdout.startswith("clusterpin "), f"--version: {r.returncode} {r.stdout} {r.stderr}")
    r = subprocess.run([*prefix, "/clusterpin", "init", "--config", "/cfg"], capture_output=True,
                       text=True, timeout=30, env={})
    expect(r.returncode == 0, f"init in an empty root: exit {r.returncode}: {r.stdout} {r.stderr}")
    cfg = json.load(open(os.path.join(root, "cfg", "service.json")))
    expect(cfg["cluster"]["id"] in r.stdout, f"init printed another peer id: {r.stdout}")
    expect(len(cfg["cluster"]["secret"]) == 64, "no cluster secret written")



def test_a_daemon_in_an_empty_root_takes_a_pin_and_stops_cleanly(ctx):
    root = ctx.folder("root")
    shutil.copy2(ctx.binary, os.path.join(root, "clusterpin"))
    prefix = chroot_runner(root)
    api, p2p = free_port(), free_port()
    host = f"/ip4/127.0.0.1/tcp/{api}"
    r = subprocess.run([*prefix, "/clusterpin", "init", "--config", "/cfg", "--api", host,
                        "--listen", f"/ip4/127.0.0.1/tcp/{p2p}"], capture_output=True, text=True,
                       timeout=30, env={})
    expect(r.returncode == 0, f"init: {r.stdout} {r.stderr}")
    log_path = os.path.join(ctx.scratch, "daemon.log")
    with open(log_path, "w") as log:
        daemon = subprocess.Popen([*prefix, "/clusterpin", "daemon", "--config", "/cfg"],
                                  stdout=log, stderr=subprocess.STDOUT, env={})
    try:
        wait_until(lambda: "is READY" in open(log_path).read() or daemon.poll() is not None, 60,
                   "the daemon to be ready")
        expect(daemon.poll() is None, f"the daemon exited: {open(log_path).read()[-2000:]}")
        cid = make_cids(1, seed=70)[0]
        r = subprocess.run([*prefix, "/clusterpin", "pin", "add", "--no-status", cid, "--host", host],
                           capture_output=True, text=True, timeout=60, env={})
        expect(r.returncode == 0 and cid in r.stdout, f"pin add: {r.stdout} {r.stderr}")
        r = subprocess.run([*prefix, "/clusterpin", "pin", "ls", "--host", host],
                           capture_output=True, text=True, timeout=60, env={})
        expect(r.returncode == 0 and r.stdout.startswith(cid + " | "), f"pin ls: {r.stdout} {r.stderr}")
        daemon.send_signal(signal.SIGTERM)
        expect(daemon.wait(timeout=30) == 0, f"the daemon did not stop cleanly: {open(log_path).read()[-2000:]}")
        # Its state is in SQLite inside the root.
        expect(any(name.endswith(".db") or "data" in name for name in os.listdir(os.path.join(root, "cfg"))),
               f"no state written: {os.listdir(os.path.join(root, 'cfg'))}")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)


if __name__ == "__main__":
    run(globals())
