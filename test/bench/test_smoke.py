#!/usr/bin/env python3
"""bench.smoke: the scale benchmark's driver runs end to end, small and short.

Runs `test/bench/run --system bfd-beacon --sessions 20 --interval 50ms` for a ~6 s window
(2 s warm-up) and checks only that its last line has the exact result format and that
all 20 sessions were Up at the end. No performance assertion: the figures are printed.
Needs root, bfd-beacon, bfdctl and bfd-loadgen ($BEACON_BIN, $BFDCTL_BIN, $LOADGEN_BIN,
set by ctest; else the build directories).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import netlab  # noqa: E402

RUN = os.path.join(HERE, "run")
SESSIONS = 20
LAST_LINE = re.compile(
    r"^system=bfd-beacon sessions=(\d+) interval_us=50000 duration_s=6 up=(\d+) flaps=\d+ "
    r"cpu_pct=\d+\.\d rss_kib=\d+ tx_err_p99_us=\d+ poll_final_p99_us=\d+$")


def loadgen_present() -> bool:
    path = os.environ.get("LOADGEN_BIN")
    if path:
        return os.access(path, os.X_OK)
    import glob
    return any(os.access(p, os.X_OK) for p in
               glob.glob(os.path.join(netlab.SOURCE_DIR, "build", "*", "test", "bench",
                                      "bfd-loadgen")))


class BenchSmoke(unittest.TestCase):
    def test_driver_bfd_beacon_20_sessions(self) -> None:
        netlab.require_root()
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        netlab.require(loadgen_present(), "bfd-loadgen not built (set LOADGEN_BIN)")
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, RUN, "--system", "bfd-beacon", "--sessions", str(SESSIONS),
             "--interval", "50ms", "--duration", "6s", "--warmup", "2s"],
            capture_output=True, text=True, timeout=100)
        took = time.monotonic() - t0
        sys.stdout.write(proc.stdout)
        sys.stdout.write(proc.stderr)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        self.assertEqual(proc.returncode, 0, f"driver exit {proc.returncode}")
        self.assertTrue(lines, "driver printed nothing")
        m = LAST_LINE.match(lines[-1])
        self.assertIsNotNone(m, f"last line has not the result format: {lines[-1]!r}")
        assert m is not None
        self.assertEqual(int(m.group(1)), SESSIONS)
        self.assertEqual(int(m.group(2)), SESSIONS, "not every session was Up at the end")
        netlab.figure(f"bench smoke: {lines[-1]} (driver took {took:.1f} s)")


if __name__ == "__main__":
    rc = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(rc)
