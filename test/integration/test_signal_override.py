#!/usr/bin/env python3
"""Integration: a [[session]] overrides its group's maintenance signal, against real BIRD 2.

Topology (created and removed by the test):

    r1 netns (BIRD)  rt0 ==veth== lb0  lb netns (bfd-beacon)  lb1 ==veth== rt0  r2 netns (BIRD)
      198.18.10.1/24                   198.18.10.11 / 198.18.11.11              198.18.11.1/24

One health group "web" (a `file` maintenance check, maintenance_signal = "down") holds both
sessions; the session to r1 overrides maintenance_signal = "admin-down" (the RFC 5882-strict
router case), the one to r2 does not. Creating the maintenance file puts the group in
maintenance: on the wire (AF_PACKET sniffer on each router's rt0, UDP 3784) r1 must see
AdminDown with diag 7 and r2 Down with diag 5, each for every packet while in maintenance;
`bfdctl sessions --json` shows each session's own signal and signal_override; both BIRDs
withdraw their VIP route (BIRD 2.0 static routes drop on either). Removing the file brings
both back. Also checks `bfdctl check-config` on the daemon's file and the human table's
SIGNAL(U/M) column.

Run by ctest (label integration) or as root: python3 test/integration/test_signal_override.py
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

INTERVAL_MS = 100
MULT = 3
VIP = "198.19.99.99/32"
R1, R2 = "198.18.10.1", "198.18.11.1"
LB1, LB2 = "198.18.10.11", "198.18.11.11"


class SignalOverrideTest(unittest.TestCase):
    def setUp(self) -> None:  # noqa: N802 (unittest API)
        netlab.require_root()
        netlab.require_tools("bird", "birdc")
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("sigovr")
        self.beacon: netlab.Beacon | None = None
        self.lb = self.lab.netns("lb")
        self.routers = {}
        for name, rt_addr, lb_if, lb_addr in (("r1", R1, "lb0", LB1), ("r2", R2, "lb1", LB2)):
            ns = self.lab.netns(name)
            self.lab.veth(ns, "rt0", self.lb, lb_if)
            ns.addr("rt0", f"{rt_addr}/24")
            self.lb.addr(lb_if, f"{lb_addr}/24")
            conf = netlab.bird_router_config([(VIP, [lb_addr])], interface="rt0",
                                             min_rx_ms=INTERVAL_MS, min_tx_ms=INTERVAL_MS,
                                             multiplier=MULT)
            self.routers[name] = {
                "ns": ns, "lb_addr": lb_addr,
                "bird": netlab.Bird.start(ns, conf),
                "routes": netlab.RouteWatcher(ns, VIP),
                "sniffer": netlab.BfdSniffer(ns, "rt0"),
            }
        self.maint = os.path.join(self.lb.dir, "maintenance")

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            for name, r in self.routers.items():
                netlab.log(f"--- {name} BIRD sessions:\n"
                           f"{netlab.safe_call(lambda: r['bird'].birdc('show', 'bfd', 'sessions'))}")
            if self.beacon is not None:
                netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
        self.lab.close()

    def config(self) -> dict:
        return {
            "daemon": {"shutdown_signal": "down"},
            "bfd": {"desired_min_tx": f"{INTERVAL_MS}ms", "required_min_rx": f"{INTERVAL_MS}ms",
                    "detect_multiplier": MULT},
            "session": [
                {"peer": R1, "local": LB1, "interface": "lb0", "group": "web",
                 "maintenance_signal": "admin-down"},
                {"peer": R2, "local": LB2, "interface": "lb1", "group": "web"},
            ],
            "check": [{"name": "maint", "type": "file", "path": self.maint}],
            "group": [{"name": "web", "checks": ["maint"], "unhealthy_signal": "down",
                       "maintenance_signal": "down", "diag": 5}],
        }

    def wait_both(self, up: bool, since: float, timeout: float) -> dict[str, float]:
        out = {}
        for name, r in self.routers.items():
            want = frozenset({r["lb_addr"]}) if up else frozenset()
            t, hops = r["routes"].wait_for(lambda h, w=want: h == w, since=since, timeout=timeout)
            self.assertEqual(hops, want, name)
            out[name] = t
        return out

    def test_override_sends_admin_down_other_session_down(self) -> None:
        path, _ = netlab.Beacon.write_config(self.lb, self.config())
        # The daemon's own parser, without a daemon.
        cc = netlab.run([netlab.bfdctl_bin(), "check-config", path], check=False)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        self.assertEqual(cc.stdout.splitlines()[0], f"{path}: OK")
        self.assertIn("2 sessions, 0 accept rules, 1 check, 1 group", cc.stdout)

        t0 = netlab.now()
        self.beacon = netlab.Beacon.start(self.lb, self.config())
        self.wait_both(True, t0, timeout=15)
        by_peer = {s["peer"]: s for s in self.beacon.sessions()}
        self.assertEqual(by_peer[R1]["maintenance_signal"], "admin-down")
        self.assertTrue(by_peer[R1]["signal_override"])
        self.assertEqual(by_peer[R1]["unhealthy_signal"], "down")
        self.assertEqual(by_peer[R2]["maintenance_signal"], "down")
        self.assertFalse(by_peer[R2]["signal_override"])
        table = self.beacon.bfdctl("sessions").stdout
        self.assertIn("SIGNAL(U/M)", table)
        self.assertIn("down/admin-down*", table)
        self.assertNotIn("\x1b", table)  # a pipe: no colour
        one = self.beacon.bfdctl("sessions", R1, "--json")
        self.assertEqual([s["peer"] for s in one], [R1])
        self.check_watch()

        # Maintenance on: the file check sees the marker at once (inotify).
        t_on = netlab.now()
        with open(self.maint, "w") as f:
            f.write("signal override test\n")
        withdrawn = self.wait_both(False, t_on, timeout=5)
        for name, t in withdrawn.items():
            figure(f"maintenance file -> {name} route withdrawn: {netlab.ms(t_on, t):.1f} ms")
        # While not Up a session sends about once a second: 2.5 s gives several packets.
        time.sleep(2.5)
        t_end = netlab.now()
        got = {}
        for name, r in self.routers.items():
            pkts = [p for p in r["sniffer"].packets(src=r["lb_addr"], since=t_on)
                    if p["t"] <= t_end]
            # From the first packet that left Up on (one sent before the check fired may
            # still say Up), every packet carries the session's own signal.
            first = next((i for i, p in enumerate(pkts) if p["state"] != "Up"), None)
            self.assertIsNotNone(first, f"{name}: the beacon never left Up: {pkts}")
            held = pkts[first:]
            self.assertGreaterEqual(len(held), 2, f"{name}: too few packets: {held}")
            got[name] = {(p["state"], p["diag"]) for p in held}
            figure(f"maintenance file -> first {held[0]['state']} packet to {name}: "
                   f"{netlab.ms(t_on, held[0]['t']):.1f} ms ({len(held)} packets held)")
        self.assertEqual(got["r1"], {("AdminDown", 7)}, got)
        self.assertEqual(got["r2"], {("Down", 5)}, got)
        figure(f"in maintenance: r1 saw {sorted(got['r1'])}, r2 saw {sorted(got['r2'])}")
        by_peer = {s["peer"]: s for s in self.beacon.sessions()}
        self.assertEqual(by_peer[R1]["hold"], "admin-down")
        self.assertEqual(by_peer[R1]["state"], "AdminDown")
        self.assertEqual(by_peer[R1]["local_diag"], 7)
        self.assertEqual(by_peer[R2]["hold"], "down")
        self.assertEqual(by_peer[R2]["local_diag"], 5)
        for s in by_peer.values():
            self.assertEqual(s["hold_source"], "health")
            self.assertTrue(s["hold_reason"].startswith("maintenance:"), s["hold_reason"])
        # Both routes stay withdrawn while in maintenance.
        for name, r in self.routers.items():
            self.assertEqual(r["routes"].nexthops(), frozenset(), name)

        # Maintenance off: both sessions come back (BIRD retries once a second).
        t_off = netlab.now()
        os.unlink(self.maint)
        back = self.wait_both(True, t_off, timeout=10)
        for name, t in back.items():
            figure(f"maintenance file removed -> {name} route back: {netlab.ms(t_off, t):.1f} ms")

    def check_watch(self) -> None:
        """`bfdctl watch` against the live daemon: plain blocks through a pipe, and the
        live view on a pseudo-terminal that `q` and SIGTERM both leave restored."""
        assert self.beacon is not None
        plain = self.beacon.bfdctl("watch", "--interval", "100ms", "--count", "2").stdout
        netlab.log(f"--- bfdctl watch (plain):\n{plain}")
        self.assertEqual(plain.count("every 100ms"), 2, plain)
        self.assertIn("2 sessions: 2 Up", plain)
        self.assertIn(R2, plain)
        self.assertNotIn("\x1b", plain)
        for how in ("q", "SIGTERM"):
            master, slave = pty.openpty()
            try:
                # 12 rows: the frame must fit (sections cut with "... N more").
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 12, 120, 0, 0))
                before = termios.tcgetattr(slave)
                proc = subprocess.Popen([netlab.bfdctl_bin(), "--socket", self.beacon.sock, "watch",
                                         "--interval", "200ms"], stdin=slave, stdout=slave,
                                        stderr=subprocess.PIPE, start_new_session=True)
                self.lab.processes.append(proc)
                seen = self.read_pty(master, lambda b: R2.encode() in b, 5)
                self.assertIn(b"\x1b[?1049h", seen)  # alternate screen
                self.assertIn(b"q: quit", seen)
                frame = seen[seen.rfind(b"\x1b[H"):]
                self.assertLessEqual(frame.count(b"\n") + 1, 12, frame)
                self.assertNotEqual(before[3] & termios.ICANON, 0)
                self.assertEqual(termios.tcgetattr(slave)[3] & termios.ICANON, 0,
                                 "non-canonical input not entered")
                if how == "q":
                    os.write(master, b"q")
                else:
                    proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=5), 0, how)
                rest = self.read_pty(master, lambda b: b"\x1b[?1049l" in b, 2)
                self.assertIn(b"\x1b[?1049l", seen + rest, how)  # main screen again
                self.assertEqual(termios.tcgetattr(slave), before, f"terminal not restored ({how})")
            finally:
                os.close(master)
                os.close(slave)

    @staticmethod
    def read_pty(fd: int, done, timeout: float) -> bytes:
        out = b""
        deadline = netlab.now() + timeout
        while netlab.now() < deadline and not done(out):
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        return out


if __name__ == "__main__":
    netlab.install_signal_handlers()
    rc = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(rc)
