#!/usr/bin/env python3
"""Integration: smoke-test README command 1, deploy/lab/run-lab (without apt/build).

  - `run-lab --once --no-build` brings BFD Up with BIRD and installs the VIP routes, exits 0,
    and leaves no namespace or process behind;
  - Ctrl-C (SIGINT) on a running lab tears it down and exits 0;
  - after a crash (SIGKILL of run-lab), `run-lab --cleanup` removes the namespaces and kills
    the bird / bfd-beacon processes left inside them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402

RUN_LAB = os.path.join(netlab.SOURCE_DIR, "deploy", "lab", "run-lab")


def lab_namespaces(pid: int) -> list[str]:
    return [n for n in netlab.list_netns() if n.startswith(f"{netlab.PREFIX}{pid}-")]


class RunLabTest(unittest.TestCase):
    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        netlab.require_tools("bird", "birdc")
        self.env = dict(os.environ, BEACON_BIN=netlab.beacon_bin() or "",
                        BFDCTL_BIN=netlab.bfdctl_bin() or "")
        self.procs: list[subprocess.Popen] = []

    def tearDown(self) -> None:  # noqa: N802
        for p in self.procs:
            netlab.stop_process(p, timeout=5)
        netlab.cleanup_stale()

    def start(self, *args: str) -> subprocess.Popen:
        p = subprocess.Popen([RUN_LAB, "--no-build", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=self.env,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def read_until(self, p: subprocess.Popen, marker: str, timeout: float = 40) -> str:
        """Read run-lab's output until a line holds `marker` (bounded by a timer)."""
        out: list[str] = []
        timer = threading.Timer(timeout, lambda: p.kill())
        timer.start()
        try:
            assert p.stdout is not None
            for line in p.stdout:
                out.append(line)
                if marker in line:
                    return "".join(out)
        finally:
            timer.cancel()
        self.fail(f"run-lab ended without printing {marker!r}:\n{''.join(out)}")

    def test_once(self) -> None:
        t0 = netlab.now()
        p = self.start("--once")
        out, _ = p.communicate(timeout=90)
        netlab.log(out)
        netlab.log(f"FIGURE run-lab --once took {(netlab.now() - t0):.1f} s")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("OK: sessions Up", out)
        self.assertEqual(lab_namespaces(p.pid), [], "run-lab left namespaces behind")

    def test_sigint_tears_down(self) -> None:
        p = self.start()
        self.read_until(p, "lab running")
        names = lab_namespaces(p.pid)
        self.assertEqual(len(names), 2, names)
        pids = [x for n in names for x in netlab.netns_pids(n)]
        self.assertGreaterEqual(len(pids), 2, "bird and bfd-beacon should run in the lab")
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("lab removed", out)
        self.assertEqual(lab_namespaces(p.pid), [])
        self.assertFalse([x for x in pids if netlab.pid_alive(x)], "processes leaked")

    def test_cleanup_after_crash(self) -> None:
        p = self.start()
        self.read_until(p, "lab running")
        names = lab_namespaces(p.pid)
        pids = [x for n in names for x in netlab.netns_pids(n)]
        self.assertGreaterEqual(len(pids), 2)
        p.kill()   # a crash: no teardown ran
        p.wait(timeout=10)
        self.assertEqual(sorted(lab_namespaces(p.pid)), sorted(names))
        c = subprocess.run([RUN_LAB, "--cleanup"], capture_output=True, text=True, timeout=60,
                           env=self.env)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
        self.assertEqual(lab_namespaces(p.pid), [], c.stdout)
        alive = [x for x in pids if netlab.pid_alive(x)]
        self.assertFalse(alive, f"processes left after --cleanup: {alive}")


if __name__ == "__main__":
    sys.exit(netlab.main(sys.argv[1:]))
