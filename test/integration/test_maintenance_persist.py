#!/usr/bin/env python3
"""Integration: operator maintenance survives a restart of the daemon (real BIRD 2).

Lab: healthlab.HealthLab (router with BIRD, ECMP VIP via lb1 and lb2, HAProxy on both). lb1's
beacon is restarted with `[daemon] state_dir` inside the lab, so its state file lives in the
test's own directory.

Scenarios (one lab, in order):
  01 `bfdctl maintenance on --reason ...` -> BIRD withdraws lb1's next hop (measured);
     SIGKILL the daemon; start it again: for 4 s the BFD session at BIRD never comes Up and
     the route never re-adds lb1 (polled the whole time); `bfdctl status` (human and --json)
     says maintenance from the state file with the reason; `maintenance off` -> lb1 back.
  02 a corrupt state file -> the daemon starts in maintenance for all (fail closed), BIRD
     never sees Up, status says why (damaged state file, reason "unreadable"); `maintenance
     off` rewrites it and lb1 comes back.

Run by ctest (label integration) or as root: python3 test/integration/test_maintenance_persist.py
"""

from __future__ import annotations

import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import healthlab  # noqa: E402
import netlab  # noqa: E402
from netlab import figure, ms  # noqa: E402

INTERVAL_MS = 100
MULT = 3
HOLD_CHECK_S = 4.0   # how long a restarted, maintained beacon is watched for a comeback
REASON = "rack move (persist test)"


class MaintenancePersistTest(healthlab.LabTestMixin, unittest.TestCase):
    hl: healthlab.HealthLab
    lab: netlab.Lab

    @classmethod
    def setUpClass(cls) -> None:  # noqa: N802
        netlab.require_root()
        netlab.require_tools("bird", "birdc", "haproxy", "ss")
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        cls.lab = netlab.Lab("maint")
        try:
            cls.hl = healthlab.HealthLab(cls.lab, interval_ms=INTERVAL_MS, mult=MULT, health=True)
            lb = cls.hl.lb1
            cls.state_dir = os.path.join(lb.ns.dir, "state")
            cls.state_file = os.path.join(cls.state_dir, "maintenance.json")
            cfg = lb.config(INTERVAL_MS, MULT, True)
            cfg["daemon"]["state_dir"] = cls.state_dir
            cls.cfg = cfg
            assert lb.beacon is not None
            lb.beacon.stop()
            lb.beacon = netlab.Beacon.start(lb.ns, cfg)
            cls.hl.wait_hops(cls.hl.both, timeout=20)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:  # noqa: N802
        cls.lab.close()

    def tearDown(self) -> None:
        if netlab.testcase_failed(self):
            print(self.hl.dump(), flush=True)

    # ------------------------------------------------------------------ helpers

    def restart(self, kill: bool) -> None:
        lb = self.lb1
        assert lb.beacon is not None
        if kill:
            pid = lb.beacon.proc.pid
            os.kill(pid, signal.SIGKILL)
            lb.beacon.proc.wait(timeout=5)
            netlab.wait_pid_gone(pid, 5.0)
        else:
            lb.beacon.stop()
        lb.beacon = netlab.Beacon.start(lb.ns, self.cfg)

    def assert_never_up(self, seconds: float) -> int:
        """Poll BIRD's BFD state and the VIP route for `seconds`: lb1 must never be Up or a
        next hop. Returns the number of polls."""
        t_end = netlab.now() + seconds
        polls = 0
        t0 = netlab.now()
        while netlab.now() < t_end:
            state = self.hl.bird.bfd_state(self.lb1.addr)
            hops = self.hl.nexthops()
            self.assertNotEqual(state, "Up", f"BIRD saw lb1 Up {netlab.now() - t0:.2f}s after "
                                             "the restart")
            self.assertNotIn(self.lb1.addr, hops, "lb1 re-added to the route")
            polls += 1
            # the route watcher records every route event: none may add lb1
            for t, line in list(self.hl.routes.events):
                if t >= t0 and self.lb1.addr in line and "Deleted" not in line:
                    self.assertNotIn(self.lb1.addr, self.hl.nexthops(), line)
        return polls

    def status(self) -> tuple[str, dict]:
        assert self.lb1.beacon is not None
        human = self.lb1.beacon.bfdctl("status").stdout
        data = self.lb1.beacon.bfdctl("status", "--json")
        return human, data

    # ------------------------------------------------------------------ scenarios

    def test_01_maintenance_survives_sigkill(self) -> None:
        lb = self.lb1
        assert lb.beacon is not None
        t0, t, _ = self.hl.measure(
            lambda: lb.beacon.bfdctl("maintenance", "on", "--reason", REASON),
            lambda h: lb.addr not in h, timeout=5)
        figure(f"maintenance on -> BIRD withdrew lb1: {ms(t0, t):.1f} ms")
        with open(self.state_file) as f:
            doc = json.load(f)
        self.assertEqual(doc["version"], 1)
        self.assertEqual(doc["maintenance"][0]["reason"], REASON)

        self.restart(kill=True)
        polls = self.assert_never_up(HOLD_CHECK_S)
        figure(f"after SIGKILL + restart: lb1 never Up for {HOLD_CHECK_S:.0f} s ({polls} polls)")
        s = lb.session()
        assert s is not None
        self.assertEqual(s.get("hold_source"), "maintenance")
        self.assertIn(REASON, s.get("hold_reason", ""))

        human, data = self.status()
        print(human, flush=True)
        self.assertIn("OUT OF ROTATION", human)
        self.assertIn("origin state-file", human)
        self.assertIn(REASON, human)
        self.assertFalse(data["in_rotation"])
        self.assertEqual(data["maintenance"][0]["origin"], "state-file")
        self.assertEqual(data["maintenance"][0]["reason"], REASON)
        self.assertEqual(data["groups"][0]["maintenance"]["origin"], "state-file")
        self.assertIn(data["groups"][0]["signal"], ("down", "init", "mixed"))
        # bfdctl groups: the health verdict is healthy, but SIGNAL is what maintenance sends.
        groups = lb.beacon.bfdctl("groups", "--json")
        sig = groups[0]["signal"]
        self.assertIn(sig["hold"], ("down", "admin-down"), groups)
        self.assertEqual(sig["source"], "maintenance", groups)
        human = lb.beacon.bfdctl("groups", json_out=False).stdout
        print(human, flush=True)
        self.assertIn("(maintenance)", human)

        t0, t, _ = self.hl.measure(lambda: lb.beacon.bfdctl("maintenance", "off"),
                                   lambda h: lb.addr in h, timeout=10)
        figure(f"maintenance off -> lb1 back in the route: {ms(t0, t):.0f} ms")
        _, data = self.status()
        self.assertTrue(data["in_rotation"])
        self.assertEqual(data["maintenance"], [])

    def test_02_corrupt_state_file_fails_closed(self) -> None:
        lb = self.lb1
        assert lb.beacon is not None
        self.hl.wait_hops(self.hl.both, timeout=10)
        lb.beacon.stop()
        self.hl.wait_hops(frozenset({self.lb2.addr}), timeout=10)
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.state_file, "w") as f:
            f.write('{"version": 1, "maintenance": [ {"scope": ')   # cut short
        lb.beacon = netlab.Beacon.start(lb.ns, self.cfg)
        polls = self.assert_never_up(3.0)
        figure(f"corrupt state file: lb1 never Up for 3 s ({polls} polls)")
        human, data = self.status()
        print(human, flush=True)
        self.assertTrue(data["state_file"]["damaged"])
        self.assertEqual(data["maintenance"][0]["scope"], "all")
        self.assertIn("unreadable", data["maintenance"][0]["reason"])
        self.assertIn("damaged", human)
        self.assertIn("unreadable", lb.beacon.log_text())
        with open(self.state_file) as f:   # not rewritten by the start
            self.assertTrue(f.read().startswith('{"version": 1, "maintenance": [ {"scope": '))
        t0, t, _ = self.hl.measure(lambda: lb.beacon.bfdctl("maintenance", "off"),
                                   lambda h: lb.addr in h, timeout=10)
        figure(f"corrupt file, maintenance off -> lb1 back: {ms(t0, t):.0f} ms")
        with open(self.state_file) as f:
            self.assertEqual(json.load(f)["maintenance"], [])


if __name__ == "__main__":
    netlab.install_signal_handlers()
    rc = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(rc)
