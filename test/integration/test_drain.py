#!/usr/bin/env python3
"""Integration: `bfdctl drain --wait` end to end (real BIRD 2, real HAProxy on lb1 and lb2).

Lab: healthlab.HealthLab (client -- router with BIRD: VIP 198.19.99.99/32 via lb1 bfd via lb2
bfd, ECMP per flow -- lb1, lb2 with HAProxy and bfd-beacon). lb1's backend is replaced by a
slow streaming server: GET /slow/<ms> answers 200 at once and then one short line every
200 ms for <ms>, then closes. lb2's backend stays the plain http.server (404 at once for that
path), so a connection that lands on lb2 ends immediately and only lb1 holds slow ones.

A holder in the client namespace opens connections to the VIP until 4 stream from lb1
(bounded: 60 attempts), each with its own length (2.5, 3.5, 4.5, 5.5 s), so HAProxy's current
connections on lb1 fall over a few seconds. lb1's beacon is restarted with
[drain] haproxy_socket = lb1's HAProxy runtime socket and a private state_dir.

Scenarios:
  01 `bfdctl drain --wait --until-conns 0`: the command -> BIRD withdraws lb1's next hop
     (measured); the plain progress lines show the count falling; exit 0 once CurrConns is 0.
     Figures: withdraw ms, drain duration, counts seen. `undrain` -> lb1 back.
  02 with connections held again, `drain --wait --timeout 1s` exits 1, says so, and
     maintenance stays on (status, route); `undrain` -> lb1 back.

Run by ctest (label integration) or as root: python3 test/integration/test_drain.py
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import healthlab  # noqa: E402
import netlab  # noqa: E402
from netlab import figure, ms  # noqa: E402

INTERVAL_MS = 100
MULT = 3
HOLD_MS = [2500, 3500, 4500, 5500]
LINE = re.compile(r"^connections (\d+) \(target (\d+)\)")


# --------------------------------------------------------------------------- helpers (children)

def _slow_server(addr: str, port: int) -> None:
    """Threaded HTTP/1.0 server: /slow/<ms> streams for <ms>; anything else answers at once."""
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 8192:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    data += chunk
            except OSError:
                return
            m = re.match(rb"GET /slow/(\d+) ", data)
            try:
                if not m:
                    self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    return
                hold = min(int(m.group(1)), 20000) / 1000.0
                self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nslow\n")
                end = time.monotonic() + hold
                while time.monotonic() < end:
                    time.sleep(0.2)
                    self.request.sendall(b".\n")
            except OSError:
                pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server((addr, port), Handler) as srv:
        print("READY", flush=True)
        srv.timeout = 0.5
        t_end = time.monotonic() + 300  # bounded lifetime
        while time.monotonic() < t_end:
            srv.handle_request()


def _holder(vip: str, want: int, holds: str) -> None:
    """Open connections to the VIP until `want` stream "slow" (lb1); read each to its end in a
    thread. Prints "HELD n" once established, then "END i" per finished one."""
    durations = [int(x) for x in holds.split(",")]
    held: list[socket.socket] = []
    for _attempt in range(60):
        if len(held) >= want:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect((vip, 80))
            s.sendall(f"GET /slow/{durations[len(held)]} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            first = s.recv(4096)
        except OSError:
            s.close()
            continue
        if b"slow" in first:
            held.append(s)
        else:
            s.close()
    print(f"HELD {len(held)}", flush=True)

    def drain(i: int, s: socket.socket) -> None:
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
        print(f"END {i}", flush=True)

    ts = [threading.Thread(target=drain, args=(i, s)) for i, s in enumerate(held)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)


# --------------------------------------------------------------------------- test

class DrainTest(healthlab.LabTestMixin, unittest.TestCase):
    hl: healthlab.HealthLab
    lab: netlab.Lab

    @classmethod
    def setUpClass(cls) -> None:  # noqa: N802
        netlab.require_root()
        netlab.require_tools("bird", "birdc", "haproxy", "ss")
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        cls.lab = netlab.Lab("drain")
        try:
            cls.hl = healthlab.HealthLab(cls.lab, interval_ms=INTERVAL_MS, mult=MULT, health=True)
            lb = cls.hl.lb1
            # lb1's backend becomes the slow streaming server (same address and port).
            lb.backend.stop()
            port = healthlab.BACKEND_PORTS["lb1"]
            cls.slow = subprocess.Popen(
                ["ip", "netns", "exec", cls.hl.backend_ns.name, sys.executable,
                 os.path.abspath(__file__), "slow-server", healthlab.BACKEND_ADDR, str(port)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                text=True)
            cls.lab.processes.append(cls.slow)
            assert cls.slow.stdout is not None
            if cls.slow.stdout.readline().strip() != "READY":
                raise RuntimeError("slow server did not start")
            cfg = lb.config(INTERVAL_MS, MULT, True)
            cfg["daemon"]["state_dir"] = os.path.join(lb.ns.dir, "state")
            cfg["drain"] = {"haproxy_socket": lb.haproxy.sock}
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

    def haproxy_conns(self) -> int:
        text = self.lb1.haproxy.runtime("show stat -1 1 -1")
        lines = text.strip().splitlines()
        cols = lines[0][2:].split(",")
        i, s = cols.index("svname"), cols.index("scur")
        return sum(int(r.split(",")[s]) for r in lines[1:] if r.split(",")[i] == "FRONTEND")

    def hold(self) -> subprocess.Popen:
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.hl.client.name, sys.executable, os.path.abspath(__file__),
             "holder", healthlab.VIP, str(len(HOLD_MS)), ",".join(str(x) for x in HOLD_MS)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            text=True)
        self.lab.processes.append(p)
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        self.assertEqual(line, f"HELD {len(HOLD_MS)}", "holder could not get 4 connections on lb1")
        netlab.wait_until(lambda: self.haproxy_conns() >= len(HOLD_MS), 5, interval=0.05,
                          what="HAProxy on lb1 counting the held connections")
        return p

    def bfdctl_popen(self, *args: str) -> subprocess.Popen:
        assert self.lb1.beacon is not None
        return subprocess.Popen([netlab.bfdctl_bin() or "bfdctl", "--socket", self.lb1.beacon.sock,
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def undrain(self) -> float:
        lb = self.lb1
        assert lb.beacon is not None
        t0, t, _ = self.hl.measure(lambda: lb.beacon.bfdctl("undrain"), lambda h: lb.addr in h,
                                   timeout=10)
        return ms(t0, t)

    def test_01_drain_wait_until_zero(self) -> None:
        holder = self.hold()
        before = self.haproxy_conns()
        t0 = netlab.now()
        p = self.bfdctl_popen("drain", "--wait", "--until-conns", "0", "--reason", "drain test")
        t_route, hops = self.hl.routes.wait_for(lambda h: self.lb1.addr not in h, since=t0,
                                                timeout=5)
        out, err = p.communicate(timeout=30)
        t_end = netlab.now()
        print(out, err, flush=True)
        self.assertEqual(p.returncode, 0, err)
        counts = [int(m.group(1)) for m in map(LINE.match, out.splitlines()) if m]
        self.assertGreaterEqual(len(counts), 3, out)
        self.assertGreaterEqual(counts[0], 2, out)
        self.assertEqual(counts[-1], 0, out)
        self.assertTrue(any(b < a for a, b in zip(counts, counts[1:])), f"never fell: {counts}")
        self.assertIn("falling", out)
        self.assertIn("drained: 0 connections", out)
        self.assertEqual(hops, frozenset({self.hl.lb2.addr}))
        figure(f"drain: command -> BIRD withdrew lb1 in {ms(t0, t_route):.1f} ms")
        figure(f"drain: {before} connections -> 0 in {t_end - t0:.1f} s; counts seen {counts}")
        status = self.lb1.beacon.bfdctl("status", "--json")  # type: ignore[union-attr]
        self.assertFalse(status["in_rotation"])
        self.assertTrue(status["drain"]["draining"])
        figure(f"undrain -> lb1 back in the route: {self.undrain():.0f} ms")
        holder.wait(timeout=20)

    def test_02_drain_timeout_keeps_maintenance(self) -> None:
        self.hl.wait_hops(self.hl.both, timeout=10)
        holder = self.hold()
        t0 = netlab.now()
        p = self.bfdctl_popen("drain", "--wait", "--timeout", "1s")
        out, err = p.communicate(timeout=20)
        elapsed = netlab.now() - t0
        print(out, err, flush=True)
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("timeout after 1s", err)
        self.assertIn("maintenance stays on", err)
        self.assertLess(elapsed, 5.0)
        status = self.lb1.beacon.bfdctl("status", "--json")  # type: ignore[union-attr]
        self.assertFalse(status["in_rotation"])
        self.assertEqual(status["maintenance"][0]["scope"], "all")
        self.assertNotIn(self.lb1.addr, self.hl.nexthops())
        time.sleep(1.0)
        self.assertNotIn(self.lb1.addr, self.hl.nexthops())
        figure(f"drain --timeout 1s: exit 1 after {elapsed:.1f} s, maintenance stayed on")
        figure(f"undrain -> lb1 back: {self.undrain():.0f} ms")
        holder.wait(timeout=20)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "slow-server":
        _slow_server(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    if len(sys.argv) == 5 and sys.argv[1] == "holder":
        _holder(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
