#!/usr/bin/env python3
"""Integration: systemd notifications (sd_notify over NOTIFY_SOCKET) from the real daemon.

Topology (created and removed by the test):

    peer netns (bfd-beacon, no groups)  pe0 ==veth== lb0  lb netns (bfd-beacon under test)
      198.18.30.1/24                                        198.18.30.11/24

The test binds a datagram socket (a path in the lab directory: an abstract name would not
cross the network namespace) and starts the beacon under test with NOTIFY_SOCKET and
WATCHDOG_USEC=1000000. Its group "web" has one exec check that takes FIRST_VERDICT_S to
answer, so the first verdict comes well after the sockets are bound. Checked, in order:

  - start: no READY=1 before the first verdict; READY=1 carries STATUS= naming the group;
    STATUS= then follows the session to "1/1 sessions Up, group web healthy";
  - WATCHDOG=1 about every WATCHDOG_USEC / 2;
  - SIGHUP (reload): RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC), then READY=1;
  - the ops loop stalled for STALL_MS (test hook `debug-stall-ops`, BEACON_TEST_HOOKS builds):
    the keep-alives stop for the stall and resume after it;
  - SIGTERM: STOPPING=1, nothing after it but the exit (status 0).

Run by ctest (label integration) or by hand as root:
    python3 test/integration/test_sd_notify.py [name-filter...]
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import healthlab  # noqa: E402
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

PEER, LB = "198.18.30.1", "198.18.30.11"
INTERVAL_MS = 100
WATCHDOG_US = 1_000_000
HALF_S = WATCHDOG_US / 2e6
FIRST_VERDICT_S = 0.8
STALL_MS = 3000


class NotifyReceiver:
    """A bound AF_UNIX datagram socket standing in for systemd; records (time, message)."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((netlab.now(), data.decode(errors="replace")))

    def snapshot(self) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.messages)

    def with_field(self, field: str, since: float = 0.0) -> list[tuple[float, str]]:
        """Messages holding `field` (a whole line, e.g. "READY=1") received at or after since."""
        return [(t, m) for t, m in self.snapshot()
                if t >= since and field in m.split("\n")]

    def statuses(self, since: float = 0.0) -> list[tuple[float, str]]:
        out = []
        for t, m in self.snapshot():
            for line in m.split("\n"):
                if t >= since and line.startswith("STATUS="):
                    out.append((t, line[len("STATUS="):]))
        return out

    def watchdogs(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [t for t, _ in self.with_field("WATCHDOG=1", since) if t <= until]

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        self.thread.join(1)


class SdNotify(unittest.TestCase):
    def setUp(self) -> None:  # noqa: N802 (unittest API)
        netlab.require_root()
        # Only the beacon under test may notify, and only the test's socket: a runner that
        # itself runs under systemd must not leak its own notify variables to the peer.
        for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            os.environ.pop(var, None)
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("sdnotify")
        self.beacon: netlab.Beacon | None = None
        self.peer_ns = self.lab.netns("peer")
        self.lb = self.lab.netns("lb")
        self.lab.veth(self.peer_ns, "pe0", self.lb, "lb0")
        self.peer_ns.addr("pe0", PEER + "/24")
        self.lb.addr("lb0", LB + "/24")
        self.rx = NotifyReceiver(os.path.join(self.lab.dir, "notify.sock"))
        self.lab.on_close(self.rx.close)
        bfd = {"desired_min_tx": f"{INTERVAL_MS}ms", "required_min_rx": f"{INTERVAL_MS}ms",
               "detect_multiplier": 3}
        self.peer = netlab.Beacon.start(self.peer_ns, {
            "bfd": bfd, "session": [{"peer": LB, "local": PEER, "interface": "pe0"}]})
        self.config = {
            "bfd": bfd,
            "session": [{"peer": PEER, "local": LB, "interface": "lb0", "group": "web"}],
            "check": [{"name": "slow", "type": "exec",
                       "command": ["/bin/sh", "-c", f"sleep {FIRST_VERDICT_S}"],
                       "interval": "2s", "timeout": "1500ms"}],
            "group": [{"name": "web", "checks": ["slow"]}],
        }

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            for t, m in self.rx.snapshot():
                netlab.log(f"notify {t:.3f}: {m!r}")
            if self.beacon is not None:
                netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
        self.lab.close()

    def start_beacon(self) -> float:
        """Start the beacon under test with the notify variables; returns its start time."""
        path, sock = netlab.Beacon.write_config(self.lb, self.config)
        log_path = os.path.join(self.lb.dir, "beacon.log")
        env = dict(os.environ, NOTIFY_SOCKET=self.rx.path, WATCHDOG_USEC=str(WATCHDOG_US))
        env.pop("WATCHDOG_PID", None)
        t0 = netlab.now()
        proc = self.lb.popen([netlab.beacon_bin() or "bfd-beacon", "--config", path],
                             log_path=log_path, env=env)
        self.beacon = netlab.Beacon(self.lb, path, sock, proc, log_path)
        netlab.wait_until(self.beacon._ready, 10, interval=0.02, what="bfd-beacon control socket")
        return t0

    def stall_ops(self) -> tuple[float, dict | None]:
        """Send debug-stall-ops from a thread (the answer may come only after the stall);
        return (time sent, the answer if it came within 0.3 s)."""
        answer: dict = {}
        sent = threading.Event()
        assert self.beacon is not None
        sock = self.beacon.sock

        def run() -> None:
            answer["t"] = netlab.now()
            sent.set()
            answer["response"] = healthlab.control_request(
                sock, {"cmd": "debug-stall-ops", "ms": STALL_MS}, timeout=STALL_MS / 1000 + 10)

        th = threading.Thread(target=run, daemon=True)
        th.start()
        sent.wait(5)
        th.join(0.3)
        return answer["t"], answer.get("response")

    def test_ready_status_watchdog_stall_and_stop(self) -> None:
        t0 = self.start_beacon()
        assert self.beacon is not None

        # ---- start: READY=1 only after the first verdict, with STATUS=.
        t_ready, ready_msg = netlab.wait_until(lambda: next(iter(self.rx.with_field("READY=1")),
                                                            None), 10, what="READY=1")
        groups = self.beacon.bfdctl("groups", "--json")
        if isinstance(groups, dict):
            groups = groups["groups"]
        self.assertNotEqual(groups[0]["verdict"], "unknown")
        figure(f"sd_notify: READY=1 {netlab.ms(t0, t_ready):.0f} ms after start (first verdict "
               f"needs >= {FIRST_VERDICT_S * 1000:.0f} ms)")
        self.assertGreaterEqual(t_ready - t0, FIRST_VERDICT_S * 0.9,
                                "READY=1 before the first health verdict could exist")
        self.assertIn("STATUS=", ready_msg)
        self.assertIn("group web healthy", ready_msg)
        early = self.rx.statuses()
        for t, s in early:
            if t < t_ready:
                self.assertTrue(s.startswith("starting:"), s)
                self.assertIn("waiting for first verdict", s)
        self.assertEqual(len(self.rx.with_field("READY=1")), 1)

        netlab.wait_until(lambda: any(s == "1/1 sessions Up, group web healthy"
                                      for _, s in self.rx.statuses(t_ready)), 10,
                          what='STATUS="1/1 sessions Up, group web healthy"')

        # ---- watchdog: WATCHDOG=1 at about half of WATCHDOG_USEC.
        t_w = netlab.now()
        netlab.wait_until(lambda: len(self.rx.watchdogs(t_w)) >= 7, 10, what="7 keep-alives")
        pings = self.rx.watchdogs(t_w)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        med = statistics.median(gaps)
        figure(f"sd_notify: WATCHDOG=1 every {med * 1000:.0f} ms median (min "
               f"{min(gaps) * 1000:.0f}, max {max(gaps) * 1000:.0f}; WATCHDOG_USEC "
               f"{WATCHDOG_US // 1000} ms)")
        self.assertLess(abs(med - HALF_S), 0.1 * HALF_S + 0.02, gaps)
        self.assertLess(max(gaps), 1.6 * HALF_S, gaps)
        self.assertGreater(min(gaps), 0.6 * HALF_S, gaps)

        # ---- reload (SIGHUP): RELOADING=1 with MONOTONIC_USEC=, then READY=1.
        t_hup = netlab.now()
        mono_before = time.clock_gettime(time.CLOCK_MONOTONIC)
        self.beacon.proc.send_signal(signal.SIGHUP)
        netlab.wait_until(lambda: self.rx.with_field("READY=1", t_hup), 5,
                          what="READY=1 after the reload")
        reloading = self.rx.with_field("RELOADING=1", t_hup)
        ready = self.rx.with_field("READY=1", t_hup)
        self.assertEqual(len(reloading), 1, self.rx.snapshot())
        self.assertEqual(len(ready), 1, self.rx.snapshot())
        self.assertLessEqual(reloading[0][0], ready[0][0])
        usec = [line for line in reloading[0][1].split("\n") if line.startswith("MONOTONIC_USEC=")]
        self.assertEqual(len(usec), 1, reloading[0][1])
        mono = int(usec[0].split("=", 1)[1]) / 1e6
        self.assertGreaterEqual(mono, mono_before - 0.001)
        self.assertLess(mono, mono_before + 2.0)
        figure(f"sd_notify: SIGHUP -> RELOADING=1 in {netlab.ms(t_hup, reloading[0][0]):.1f} ms, "
               f"READY=1 {netlab.ms(reloading[0][0], ready[0][0]):.1f} ms later")

        # ---- ops loop stalled: keep-alives stop, then resume.
        t_stall, resp = self.stall_ops()
        if resp is not None and not resp.get("ok", False):
            if "unknown command" in str(resp.get("error", "")):
                self.skipTest("daemon built without BEACON_TEST_HOOKS (no debug-stall-ops)")
            self.fail(f"debug-stall-ops refused: {resp}")
        t_end = t_stall + STALL_MS / 1000
        netlab.wait_until(lambda: len(self.rx.watchdogs(t_end)) >= 2, STALL_MS / 1000 + 5,
                          what="keep-alives after the stall")
        around = self.rx.watchdogs(t_stall - 2 * HALF_S)
        during = [t for t in around if t_stall + 0.4 <= t <= t_end - 0.1]
        self.assertEqual(during, [], f"WATCHDOG=1 while the ops loop was stalled: "
                         f"{[round(t - t_stall, 3) for t in during]}")
        gap_start, gap = max(((a, b - a) for a, b in zip(around, around[1:])), key=lambda x: x[1])
        resumed = next(t for t in around if t > gap_start + gap - 1e-6)
        figure(f"sd_notify: ops loop stalled {STALL_MS} ms -> no WATCHDOG=1 for {gap * 1000:.0f} "
               f"ms (last {netlab.ms(t_stall, gap_start):.0f} ms after the hook was sent, "
               f"resumed {netlab.ms(t_end, resumed):.0f} ms after the stall ended)")
        self.assertGreater(gap, STALL_MS / 1000 - 0.5)
        self.assertLess(gap, STALL_MS / 1000 + 1.5)
        log = self.beacon.log_text()
        self.assertIn("watchdog keep-alive withheld: ops loop silent", log)
        self.assertIn("watchdog keep-alive resumed", log)

        # ---- stop: STOPPING=1, then nothing but the exit.
        t_term = netlab.now()
        self.beacon.proc.send_signal(signal.SIGTERM)
        rc = self.beacon.wait_exit(timeout=10)
        self.assertEqual(rc, 0, self.beacon.log_text()[-2000:])
        after = [(t, m) for t, m in self.rx.snapshot() if t >= t_term]
        stopping = [i for i, (_, m) in enumerate(after) if "STOPPING=1" in m.split("\n")]
        self.assertEqual(len(stopping), 1, after)
        self.assertEqual(stopping[0], len(after) - 1, f"messages after STOPPING=1: {after}")
        self.assertIn("STATUS=stopping: signalling peers (down)", after[-1][1])
        figure(f"sd_notify: SIGTERM -> STOPPING=1 in {netlab.ms(t_term, after[-1][0]):.1f} ms, "
               f"exit 0 in {netlab.ms(t_term, netlab.now()):.0f} ms")
        # The peer was told before the beacon left (shutdown signal Down, diag 5).
        s = self.peer.session(LB)
        assert s is not None
        self.assertEqual(s.get("remote_state"), "Down", s)
        self.assertEqual(s.get("remote_diag"), 5, s)


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
