"""A small runner for the process-level tests (CLI, daemons, real IPFS).

Every function named test_* in the calling module runs in file order; each prints "ok" or
"FAIL" with the reason, and the last line is "RESULT: N passed, M failed" (read by
scripts/test-summary). The exit code is 1 if any test failed. `--only NAME` runs one test.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback


class Context:
    """What every test gets: the clusterpin binary, the source root and a scratch folder."""

    def __init__(self, binary, source_root, scratch):
        self.binary = binary
        self.source_root = source_root
        self.scratch = scratch

    def run(self, *args, env=None, stdin=None, timeout=60, argv0=None):
        """Runs clusterpin with args; returns CompletedProcess with text stdout/stderr."""
        full_env = dict(os.environ)
        full_env.pop("CLUSTERPIN_PATH", None)
        full_env.pop("CLUSTER_SECRET", None)
        if env:
            full_env.update(env)
        cmd = [argv0 or self.binary, *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              env=full_env, timeout=timeout)

    def folder(self, name):
        path = os.path.join(self.scratch, name)
        os.makedirs(path, exist_ok=True)
        return path


def run(module_globals):
    binary = os.path.abspath(sys.argv[1])
    source_root = os.path.abspath(sys.argv[2])
    only = None
    if "--only" in sys.argv:
        only = sys.argv[sys.argv.index("--only") + 1]
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        if only and name != only:
            continue
        scratch = tempfile.mkdtemp(prefix="clusterpin-test-")
        start = time.monotonic()
        try:
            fn(Context(binary, source_root, scratch))
            passed += 1
            print(f"ok   {name} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception:  # noqa: BLE001 - a test failure of any kind is reported, not raised
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - start:.1f}s)", flush=True)
            traceback.print_exc(file=sys.stdout)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"RESULT: {passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)
