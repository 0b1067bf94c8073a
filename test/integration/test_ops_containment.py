#!/usr/bin/env python3
"""Integration: no control request stops the ops loop, and a dead ops loop never keeps a route.

Topology (created and removed by every test):

    router netns (BIRD 2)  rt0 ==veth== lb0  lb netns (bfd-beacon)
      198.18.10.1/24                          198.18.10.11/24

BIRD holds `route 198.19.99.99/32 via 198.18.10.11 bfd`. The beacon's group "web" has a
polled exec check (`/bin/true` every 100 ms) and a maintenance file check; [health]
failsafe_timeout = 500ms, so a stalled ops loop would hold the group Down within ~0.5 s.

  - hostile requests: `{"cmd":"groups","n":-1e400}` and `{"cmd":"groups","n":1e999999}` (numbers
    that overflow a double: the JSON parser reports those as out_of_range, not as a syntax
    error), an overflowing id, deep nesting and invalid UTF-8, sent raw on the control socket.
    Each gets an {"ok":false,...} line; afterwards, for three fail-safe timeouts, `bfdctl
    groups` keeps answering, the exec check keeps producing results, no session is held and
    BIRD keeps the route.
  - the ops loop forced to fail (test hook `debug-fail-ops`, BEACON_TEST_HOOKS builds only):
    the daemon sends the shutdown signal (Down, diag 5) to its peer, BIRD withdraws faster
    than silence would, and the daemon exits on its own with status 70.
  - a slow stop: the ops loop stalled (test hook `debug-stall-ops`, 4 fail-safe timeouts) and
    SIGTERM right after: the health side cannot stop until the stall ends, but the fail-safe
    was disarmed when the signal was taken, so the peer sees Up until the stall ends (no
    fail-safe Down after 500 ms), then the shutdown signal, and the daemon exits 0.

Run by ctest (label integration) or by hand as root:
    python3 test/integration/test_ops_containment.py [name-filter...]
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

INTERVAL_MS = 100
MULT = 3
DETECT_MS = INTERVAL_MS * MULT
FAILSAFE_MS = 500
EXIT_OPS_LOOP_FAILED = 70
ROUTER, LB, VIP = "198.18.10.1", "198.18.10.11", "198.19.99.99/32"


def raw_request(sock_path: str, line: bytes, timeout: float = 5.0) -> dict | None:
    """Send one raw request line; return the parsed response line (None: no answer)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(line + b"\n")
        buf = b""
        deadline = netlab.now() + timeout
        while b"\n" not in buf and netlab.now() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
        if b"\n" not in buf:
            return None
        return json.loads(buf.split(b"\n", 1)[0])
    finally:
        s.close()


class OpsContainment(unittest.TestCase):
    def setUp(self) -> None:  # noqa: N802 (unittest API)
        netlab.require_root()
        netlab.require_tools("bird", "birdc")
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("opsloop")
        self.beacon: netlab.Beacon | None = None
        self.router = self.lab.netns("router")
        self.lb = self.lab.netns("lb")
        self.lab.veth(self.router, "rt0", self.lb, "lb0")
        self.router.addr("rt0", ROUTER + "/24")
        self.lb.addr("lb0", LB + "/24")
        conf = netlab.bird_router_config([(VIP, [LB])], interface="rt0", min_rx_ms=INTERVAL_MS,
                                         min_tx_ms=INTERVAL_MS, multiplier=MULT)
        self.bird = netlab.Bird.start(self.router, conf)
        self.routes = netlab.RouteWatcher(self.router, VIP)
        self.sniffer = netlab.BfdSniffer(self.router, "rt0")
        config = {
            "daemon": {"shutdown_signal": "down"},
            "bfd": {"desired_min_tx": f"{INTERVAL_MS}ms", "required_min_rx": f"{INTERVAL_MS}ms",
                    "detect_multiplier": MULT},
            "session": [{"peer": ROUTER, "local": LB, "interface": "lb0", "group": "web"}],
            "health": {"failsafe_timeout": f"{FAILSAFE_MS}ms"},
            "check": [
                {"name": "alive", "type": "exec", "command": ["/bin/true"], "interval": "100ms",
                 "timeout": "80ms"},
                {"name": "maint", "type": "file", "path": os.path.join(self.lb.dir, "maintenance")},
            ],
            "group": [{"name": "web", "checks": ["alive", "maint"]}],
        }
        t0 = netlab.now()
        self.beacon = netlab.Beacon.start(self.lb, config)
        self.routes.wait_for(bool, since=t0, timeout=15)
        netlab.wait_until(lambda: (self.beacon.session(ROUTER) or {}).get("state") == "Up", 5,
                          what="beacon session Up")

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self) and self.beacon is not None:
            netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
        self.lab.close()

    def alive_results(self) -> int:
        checks = self.beacon.bfdctl("checks", "--json")
        if isinstance(checks, dict):
            checks = checks["checks"]
        return next(c["results"] for c in checks if c["name"] == "alive")

    def test_hostile_requests_leave_the_ops_loop_running(self) -> None:
        assert self.beacon is not None
        deep = b"[" * 30000 + b"]" * 30000
        requests = [
            (b'{"cmd":"groups","n":-1e400}', "invalid JSON"),
            (b'{"cmd":"groups","n":1e999999}', "invalid JSON"),
            (b'{"cmd":"sessions","id":1e400}', "invalid JSON"),
            (b'{"cmd":"session-set-state","state":"down","diag":1e400,"all":true}', "invalid JSON"),
            (b'{"cmd":"groups","n":' + deep + b"}", None),
            (b'{"cmd":"\xc3\x28"}', None),
            (b'{"cmd":"groups","id":"\xed\xa0\x80"}', None),
        ]
        results_before = self.alive_results()
        t0 = netlab.now()
        for line, must_say in requests:
            r = raw_request(self.beacon.sock, line)
            self.assertIsNotNone(r, f"no answer to {line[:60]!r}")
            self.assertIs(r.get("ok"), False, f"{line[:60]!r} -> {r}")
            self.assertIsInstance(r.get("error"), str)
            if must_say:
                self.assertIn(must_say, r["error"], f"{line[:60]!r} -> {r}")
        # Three fail-safe timeouts: a dead ops loop would have tripped the fail-safe by now.
        answered = 0
        deadline = t0 + 3 * FAILSAFE_MS / 1000.0
        while netlab.now() < deadline:
            groups = self.beacon.bfdctl("groups", "--json", timeout=2)
            if isinstance(groups, dict):
                groups = groups["groups"]
            self.assertEqual([g["verdict"] for g in groups], ["healthy"])
            s = self.beacon.session(ROUTER)
            assert s is not None
            self.assertEqual((s["state"], s["hold"]), ("Up", "none"), json.dumps(s))
            answered += 1
            time.sleep(0.1)
        results_after = self.alive_results()
        figure(f"after {len(requests)} hostile requests: {answered} `bfdctl groups` answered in "
               f"{3 * FAILSAFE_MS} ms, exec check {results_after - results_before} new results")
        self.assertGreaterEqual(results_after - results_before, 5, "the checks stopped running")
        self.assertEqual(self.routes.nexthops(), frozenset({LB}))
        changes = [line for t, line in self.routes.events if t >= t0]
        self.assertEqual(changes, [], "the VIP route changed")
        self.assertEqual(self.bird.bfd_state(LB), "Up")
        self.assertIsNone(self.beacon.proc.poll(), "daemon exited")
        log = self.beacon.log_text()
        self.assertNotIn("ops loop failed", log)
        self.assertNotIn("fail-safe", log)

    def test_failed_ops_loop_signals_peers_and_exits_70(self) -> None:
        assert self.beacon is not None
        t0 = netlab.now()
        r = raw_request(self.beacon.sock, b'{"cmd":"debug-fail-ops"}')
        self.assertIsNotNone(r)
        if not r.get("ok") and "unknown command" in r.get("error", ""):
            self.skipTest("daemon built without BEACON_TEST_HOOKS")
        self.assertIs(r.get("ok"), True, r)
        rc = self.beacon.wait_exit(timeout=5)
        t_exit = netlab.now()
        self.assertEqual(rc, EXIT_OPS_LOOP_FAILED, self.beacon.log_text()[-2000:])
        t_route, _ = self.routes.wait_for(lambda h: not h, since=t0, timeout=5)
        downs = [p for p in self.sniffer.packets(src=LB, since=t0) if p["state"] == "Down"]
        self.assertTrue(downs, "no Down packet from the beacon: the peer was not signalled")
        self.assertEqual({p["diag"] for p in downs}, {5})
        route_ms = (t_route - t0) * 1000
        figure(f"ops loop failure -> exit {rc} in {(t_exit - t0) * 1000:.0f} ms; route withdrawn "
               f"{route_ms:.1f} ms after the hook ({len(downs)} Down packets; detection time "
               f"{DETECT_MS} ms)")
        # The last Up left at most one interval before t0, so silence would withdraw no
        # earlier than detection time minus one interval after t0.
        self.assertLess(route_ms, DETECT_MS - INTERVAL_MS, "withdrawn by silence, not by the signal")
        log = self.beacon.log_text()
        self.assertIn("ops loop failed: test hook: ops loop forced to fail", log)
        self.assertIn(f"exiting with status {EXIT_OPS_LOOP_FAILED}", log)

    def test_slow_stop_never_trips_the_failsafe(self) -> None:
        assert self.beacon is not None
        stall_ms = 4 * FAILSAFE_MS
        answer: list[dict | None] = []

        def stall() -> None:
            answer.append(raw_request(self.beacon.sock,
                                      json.dumps({"cmd": "debug-stall-ops", "ms": stall_ms}).encode(),
                                      timeout=stall_ms / 1000 + 5))

        t0 = netlab.now()
        th = threading.Thread(target=stall)
        th.start()
        time.sleep(0.1)  # the stall has begun: the ops loop no longer heartbeats
        self.beacon.proc.send_signal(signal.SIGTERM)
        rc = self.beacon.wait_exit(timeout=stall_ms / 1000 + 10)
        th.join(10)
        if answer and answer[0] and "unknown command" in answer[0].get("error", ""):
            self.skipTest("daemon built without BEACON_TEST_HOOKS")
        t_exit = netlab.now()
        self.assertEqual(rc, 0, self.beacon.log_text()[-2000:])
        # The stop waited for the stall, far past the fail-safe timeout.
        self.assertGreater(t_exit - t0, stall_ms / 1000 * 0.9)
        pkts = self.sniffer.packets(src=LB, since=t0)
        not_up = [p for p in pkts if p["state"] != "Up"]
        self.assertTrue(not_up, "no shutdown signal seen")
        # Until the stall ends only Up goes out: the fail-safe (Down diag 5 after
        # FAILSAFE_MS) did not fire; the shutdown signal follows the stall.
        early = [p for p in not_up if p["t"] - t0 < stall_ms / 1000 * 0.9]
        self.assertEqual(early, [], "the session left Up during the stop (fail-safe)")
        first = not_up[0]
        log = self.beacon.log_text()
        self.assertNotIn("fail-safe: no health heartbeat", log)
        figure(f"slow stop ({stall_ms} ms stalled ops loop, fail-safe {FAILSAFE_MS} ms): first "
               f"non-Up packet {first['state']} diag {first['diag']} after "
               f"{(first['t'] - t0) * 1000:.0f} ms (the shutdown signal), exit {rc}")


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
