#!/usr/bin/env python3
"""Integration: configuration reload (SIGHUP and `bfdctl reload`) against a real BIRD 2.

Topology (created and removed by the test):

    router netns (BIRD 2)   rt0 ==veth== lb0   lb netns (bfd-beacon)
      198.18.20.1/24, 198.18.20.2/24            198.18.20.11/24, 198.18.20.12/24

BIRD holds `route 198.19.98.98/32 via 198.18.20.11 bfd` (session A: beacon 198.18.20.11 <->
BIRD 198.18.20.1) and a BFD neighbour 198.18.20.12 from its second address 198.18.20.2
(session B, which the beacon only has once a reload adds it). The wire is captured on the
router's rt0 with tshark (capture filter udp port 3784; kernel timestamps).

One test, in order (one BIRD, one beacon, ~30 s):
  (a) 20 reloads with an unchanged file, SIGHUP and `bfdctl reload` alternating: session A
      stays Up at BIRD (same state and "since"), the beacon's discriminator is unchanged, and
      no gap between the beacon's packets exceeds the TX interval plus a small scheduling
      tolerance (RFC 5880 jitter keeps them in [75 %, 100 %] of the interval);
  (b) an invalid file: `bfdctl reload` exits 1 printing file:line:column, a SIGHUP with it
      logs the error, and everything keeps running;
  (c) a timer change: a Poll from the beacon answered by BIRD's Final on the wire, session A
      stays Up, BIRD's interval follows;
  (d) an added session comes Up with BIRD's second address; removing it again makes the
      beacon signal Down diag 5 (seen on the wire and at BIRD) and it leaves `bfdctl sessions`.
Figures printed: max gap over the 20 reloads, reload durations, Poll->Final.

Run by ctest (label integration) or by hand as root: python3 test/integration/test_reload.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

INTERVAL_MS = 100
MULT = 3
VIP = "198.19.98.98/32"
RT_A, RT_B = "198.18.20.1", "198.18.20.2"
LB_A, LB_B = "198.18.20.11", "198.18.20.12"
# A gap may exceed the interval by the engine's wake-up slot, the capture's own delay and
# the VM's scheduling noise; never by anything like a missed packet (+75 %).
GAP_TOLERANCE_MS = 8.0
RELOADS = 20


def bird_config() -> str:
    return "\n".join([
        "log stderr all;",
        "router id 198.18.255.1;",
        "protocol device { scan time 10; }",
        "protocol bfd bfd1 {",
        f'  interface "rt0" {{ min rx interval {INTERVAL_MS} ms; min tx interval {INTERVAL_MS} ms; '
        f"idle tx interval 1000 ms; multiplier {MULT}; }};",
        f'  neighbor {LB_B} dev "rt0" local {RT_B};',
        "}",
        f"protocol static static_ipv4 {{\n  ipv4;\n  route {VIP} via {LB_A} bfd;\n}}",
        'protocol kernel kernel_ipv4 { ipv4 { import none; export where proto = "static_ipv4"; }; }',
        "",
    ])


class Capture:
    """tshark on one interface of a namespace: one line per BFD packet, kernel timestamps."""

    FIELDS = ["frame.time_epoch", "ip.src", "ip.dst", "bfd.sta", "bfd.diag", "bfd.flags.p",
              "bfd.flags.f", "bfd.my_discriminator", "bfd.desired_min_tx_interval"]

    def __init__(self, ns: netlab.Netns, iface: str):
        self.path = os.path.join(ns.dir, "capture.txt")
        self.out = open(self.path, "w")
        cmd = ["tshark", "-l", "-n", "-i", iface, "-f", "udp port 3784", "-T", "fields",
               "-E", "separator=/t", "-a", "duration:300"]
        for f in self.FIELDS:
            cmd += ["-e", f]
        self.proc = ns.popen(cmd, stdout=self.out)
        ns.lab.processes.append(self.proc)
        self.err = os.path.join(ns.dir, "tshark.log")
        # tshark says "Capturing on 'rt0'" on stderr once the capture runs: wait for a packet.
        netlab.wait_until(lambda: self.packets(), 10, what="tshark capturing BFD packets")

    def packets(self) -> list[dict]:
        self.out.flush()
        rows = []
        with open(self.path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < len(self.FIELDS) or not parts[0]:
                    continue
                try:
                    rows.append({
                        "t": float(parts[0]), "src": parts[1], "dst": parts[2],
                        "state": int(parts[3], 0), "diag": int(parts[4], 0),
                        "poll": parts[5] in ("1", "True"), "final": parts[6] in ("1", "True"),
                        "my_discr": int(parts[7], 0), "tx_us": int(parts[8], 0)})
                except ValueError:
                    continue
        return rows

    def close(self) -> None:
        netlab.stop_process(self.proc, timeout=2.0)
        self.out.close()


STATE_DOWN, STATE_UP = 1, 3


class ReloadTest(unittest.TestCase):

    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        netlab.require_tools("bird", "birdc", "tshark")
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("reload")
        self.beacon: netlab.Beacon | None = None
        self.router = self.lab.netns("router")
        self.lb = self.lab.netns("lb")
        self.lab.veth(self.router, "rt0", self.lb, "lb0")
        for a in (RT_A, RT_B):
            self.router.addr("rt0", f"{a}/24")
        for a in (LB_A, LB_B):
            self.lb.addr("lb0", f"{a}/24")
        self.bird = netlab.Bird.start(self.router, bird_config())
        self.routes = netlab.RouteWatcher(self.router, VIP)

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            netlab.log(f"--- BIRD sessions:\n"
                       f"{netlab.safe_call(lambda: self.bird.birdc('show', 'bfd', 'sessions'))}")
            netlab.log(f"--- BIRD log tail:\n{netlab.read_tail(self.bird.log_path, 40)}")
            if self.beacon is not None:
                netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 80)}")
        self.lab.close()

    # ------------------------------------------------------------------ helpers

    def config(self, tx_ms: int = INTERVAL_MS, with_b: bool = False) -> dict:
        sessions = [{"peer": RT_A, "local": LB_A, "interface": "lb0", "group": "web",
                     "desired_min_tx": f"{tx_ms}ms"}]
        if with_b:
            sessions.append({"peer": RT_B, "local": LB_B, "interface": "lb0", "group": "web"})
        return {
            "daemon": {"shutdown_signal": "down", "control_socket":
                       os.path.join(self.lb.dir, "beacon.sock")},
            "bfd": {"desired_min_tx": f"{INTERVAL_MS}ms", "required_min_rx": f"{INTERVAL_MS}ms",
                    "detect_multiplier": MULT},
            "session": sessions,
        }

    def write(self, cfg: dict) -> None:
        netlab.Beacon.write_config(self.lb, cfg)

    def reload(self, *extra: str, check: bool = True) -> tuple[subprocess.CompletedProcess, float]:
        t0 = netlab.now()
        p = self.beacon.bfdctl("reload", *extra, check=check)
        return p, (netlab.now() - t0) * 1000.0

    def bird_row(self, peer: str) -> dict | None:
        for s in self.bird.bfd_sessions():
            if s["peer"] == peer:
                return s
        return None

    def assert_same_since(self, now: dict, before: dict) -> None:
        """BIRD's session is Up with the same "since" as before. BIRD prints "since" as wall
        time derived from its monotonic clock, so the figure wobbles by a few ms between
        queries; a flap would move it by at least BIRD's 1 s slow rate."""
        def secs(text: str) -> float:
            h, m, rest = text.split(":")
            return int(h) * 3600 + int(m) * 60 + float(rest)
        self.assertEqual(now["state"], "Up", now)
        self.assertLess(abs(secs(now["since"]) - secs(before["since"])), 0.05,
                        f"BIRD saw a state change: since {before['since']} -> {now['since']}")

    def sighup_and_wait(self, count_before: int) -> float:
        """SIGHUP, then wait until the log shows one more finished reload; returns ms."""
        t0 = netlab.now()
        self.beacon.proc.send_signal(signal.SIGHUP)
        netlab.wait_until(lambda: self.beacon.log_text().count("reload (SIGHUP) done") > count_before,
                          5, interval=0.01, what="SIGHUP reload finished")
        return (netlab.now() - t0) * 1000.0

    # ------------------------------------------------------------------ the test

    def test_reload_without_flaps(self) -> None:
        self.write(self.config())
        cfg_path = os.path.join(self.lb.dir, "beacon.toml")
        t0 = netlab.now()
        self.beacon = netlab.Beacon.start(self.lb, self.config())
        self.routes.wait_for(bool, since=t0, timeout=15)
        self.bird.wait_bfd_state(LB_A, "Up", timeout=5)
        cap = Capture(self.router, "rt0")
        time.sleep(1.0)

        # ---- (a) 20 reloads with an unchanged file
        before = self.bird_row(LB_A)
        first = self.beacon.session(RT_A)
        discr, changes = first["local_discr"], first["counters"]["state_changes"]
        t_start = time.time()
        durations_ctl, durations_hup = [], []
        for i in range(RELOADS):
            if i % 2 == 0:
                p, ms = self.reload()
                self.assertIn("sessions: 1 unchanged", p.stdout)
                durations_ctl.append(ms)
            else:
                durations_hup.append(self.sighup_and_wait(len(durations_hup)))
            time.sleep(0.15)
        time.sleep(0.5)
        t_end = time.time()
        after = self.bird_row(LB_A)
        self.assertEqual(after["state"], "Up")
        self.assert_same_since(after, before)
        s = self.beacon.session(RT_A)
        self.assertEqual(s["local_discr"], discr)
        self.assertEqual(s["counters"]["state_changes"], changes, "the beacon changed state")
        self.assertEqual(s["counters"]["up_count"], 1)
        ours = [p for p in cap.packets() if p["src"] == LB_A and t_start <= p["t"] <= t_end]
        self.assertGreater(len(ours), 30, "too few beacon packets captured")
        gaps = [(b["t"] - a["t"]) * 1000.0 for a, b in zip(ours, ours[1:])]
        max_gap = max(gaps)
        figure(f"{RELOADS} reloads, unchanged file: {len(ours)} beacon packets, max gap "
               f"{max_gap:.1f} ms, min gap {min(gaps):.1f} ms (TX interval {INTERVAL_MS} ms)")
        figure(f"reload duration: bfdctl reload {min(durations_ctl):.1f}-{max(durations_ctl):.1f} ms "
               f"(command round trip), SIGHUP -> done in log {min(durations_hup):.1f}-"
               f"{max(durations_hup):.1f} ms")
        self.assertLess(max_gap, INTERVAL_MS + GAP_TOLERANCE_MS, f"gaps: {sorted(gaps)[-5:]}")
        self.assertTrue(all(not p["poll"] for p in ours), "a Poll without a change")

        # ---- (b) an invalid file changes nothing
        with open(cfg_path) as f:
            good = f.read()
        with open(cfg_path, "w") as f:
            f.write(good.replace(f'peer = "{RT_A}"', 'peer = "198.18.20.300"', 1))
        p, _ = self.reload(check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        netlab.log(f"$ bfdctl reload  (exit {p.returncode})\n{p.stderr}")
        self.assertRegex(p.stderr, rf"{cfg_path}:\d+:\d+: ")
        figure(f"invalid file: bfdctl reload exit {p.returncode}: "
               f"{p.stderr.strip().splitlines()[-1]}")
        self.beacon.proc.send_signal(signal.SIGHUP)
        netlab.wait_until(lambda: "reload (SIGHUP) failed" in self.beacon.log_text(), 5,
                          what="SIGHUP with a bad file logged")
        self.assertRegex(self.beacon.log_text(), rf"reload: {cfg_path}:\d+:\d+: ")
        self.assertIsNone(self.beacon.proc.poll(), "the daemon exited")
        self.assert_same_since(self.bird_row(LB_A), before)
        self.assertEqual(self.beacon.session(RT_A)["state"], "Up")
        with open(cfg_path, "w") as f:
            f.write(good)

        # ---- (c) a timer change runs a Poll answered by a Final
        self.write(self.config(tx_ms=200))
        t_poll = time.time()
        p, ms = self.reload("--wait")
        figure(f"timer change 100 -> 200 ms: bfdctl reload --wait {ms:.1f} ms: "
               f"{p.stdout.strip().splitlines()[-1]}")
        netlab.log(f"$ bfdctl reload --wait\n{p.stdout}")
        self.assertIn("1 timers changed", p.stdout)
        netlab.wait_until(lambda: any(x["src"] == RT_A and x["final"] and x["t"] >= t_poll
                                      for x in cap.packets()), 3, what="BIRD's Final")
        pk = cap.packets()
        poll = next(x for x in pk if x["src"] == LB_A and x["poll"] and x["t"] >= t_poll)
        final = next(x for x in pk if x["src"] == RT_A and x["final"] and x["t"] >= poll["t"])
        self.assertEqual(poll["tx_us"], 200_000)
        figure(f"Poll -> Final on the wire: {(final['t'] - poll['t']) * 1000:.1f} ms")
        time.sleep(0.5)
        self.assert_same_since(self.bird_row(LB_A), before)
        # BIRD's detection time is our Detect Mult x our new (slower) TX interval.
        netlab.wait_until(lambda: abs(self.bird_row(LB_A)["timeout"] - MULT * 0.2) < 1e-6, 3,
                          what="BIRD's detection time follows the new timer")

        # ---- (d) an added session comes Up; removing it signals Down and it goes
        self.write(self.config(tx_ms=200, with_b=True))
        t_add = netlab.now()
        p, _ = self.reload()
        self.assertIn("1 added", p.stdout)
        self.bird.wait_bfd_state(LB_B, "Up", timeout=5)
        figure(f"added session Up at BIRD {(netlab.now() - t_add) * 1000:.0f} ms after the reload")
        self.assertEqual(self.beacon.session(RT_B)["state"], "Up")
        time.sleep(0.3)
        self.write(self.config(tx_ms=200))
        t_rm = time.time()
        p, ms = self.reload("--wait")
        netlab.log(f"$ bfdctl reload --wait\n{p.stdout}")
        self.assertIn("1 removed", p.stdout)
        figure(f"removed session: bfdctl reload --wait {ms:.1f} ms: "
               f"{p.stdout.strip().splitlines()[-1]}")
        netlab.wait_until(lambda: self.bird_row(LB_B)["state"] != "Up", 3,
                          what="BIRD sees the removed session Down")
        # tshark hands packets on with a little delay: wait for the capture to show the
        # signal. A periodic Up packet may still leave between t_rm and the reload.
        def signal_packets() -> list[dict]:
            sent = [x for x in cap.packets() if x["src"] == LB_B and x["t"] >= t_rm]
            first = next((i for i, x in enumerate(sent) if x["state"] != STATE_UP), None)
            return [] if first is None else sent[first:]
        netlab.wait_until(signal_packets, 3, what="the removed session's signal in the capture")
        down = signal_packets()
        figure(f"removed session: signal on the wire: state {down[0]['state']} diag "
               f"{down[0]['diag']}, {len(down)} packet(s) until deleted")
        self.assertEqual([(x["state"], x["diag"]) for x in down], [(STATE_DOWN, 5)] * len(down))
        self.assertIsNone(self.beacon.session(RT_B), "removed session still listed")
        # Session A never moved through all of this.
        self.assertEqual(self.bird_row(LB_A)["state"], "Up")
        self.assert_same_since(self.bird_row(LB_A), before)
        self.assertEqual(self.beacon.session(RT_A)["counters"]["up_count"], 1)
        cap.close()

    def test_shutdown_signal_after_reload(self) -> None:
        """A reload that changes [daemon] shutdown_signal: SIGTERM sends the new signal and the
        log line names it, not the start-up one."""
        self.beacon = netlab.Beacon.start(self.lb, self.config())
        self.bird.wait_bfd_state(LB_A, "Up", timeout=10)
        cfg = self.config()
        cfg["daemon"]["shutdown_signal"] = "admin-down"
        self.write(cfg)
        p, _ = self.reload()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIsNone(self.beacon.proc.poll(), "the daemon exited")
        self.beacon.stop()
        text = self.beacon.log_text()
        line = next((x for x in text.splitlines() if "shutting down (signal to peers" in x), "")
        netlab.log(f"stop line: {line}")
        self.assertIn("signal to peers: admin-down", line, text[-2000:])
        netlab.wait_until(lambda: self.bird_row(LB_A)["state"] != "Up", 5,
                          what="BIRD sees the session leave Up")


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
