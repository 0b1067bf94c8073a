#!/usr/bin/env python3
"""Integration: the Prometheus endpoint of a live bfd-beacon talking to a real BIRD 2.

Topology (created and removed by the test):

    router netns (BIRD 2)  rt0 ==veth== lb0  lb netns (bfd-beacon, metrics on 127.0.0.1:19788)
      198.18.10.1/24                            198.18.10.11/24
    peer netns (scripted)  p0  ==veth== lb1
      198.18.20.2/24                            198.18.20.11/24

Checks:
  - the scrape passes `promtool check metrics` with no finding;
  - per-session packet and flap counters agree with `bfdctl counters --json`: the scrape
    shows a snapshot published at most ~1 s before it, so the test reads counters, waits
    longer than one publish period, scrapes, reads counters again, and requires every
    scraped value within [first read, second read];
  - a held session (set-state down) counts one local-hold flap in both;
  - a scripted peer brings a passive session ([[accept]]) Up three times and takes it down
    with Down, AdminDown and silence: one flap of each cause in bfdctl and in the scrape;
    once the engine removed the silent session, its series are gone from the next scrape;
  - process_* values are sane (start time, memory, descriptors, threads).

Run by ctest (label integration) or as root: python3 test/integration/test_metrics.py
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

INTERVAL_MS = 100
MULT = 3
PORT = 19788
ROUTER, LB, STRAY, LB2 = "198.18.10.1", "198.18.10.11", "198.18.20.2", "198.18.20.11"
VIP = "198.19.99.99/32"
PUBLISH_WAIT_S = 1.6  # > the 1 s publish period plus a build

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError(f"not a sample line: {line!r}")
        labels = dict(LABEL.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


SCRAPE = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.stdout.write(r.headers.get("Content-Type", "") + "\\n")
    sys.stdout.write(r.read().decode())
"""

# A scripted peer on STRAY: brings the beacon's passive session Up, then takes it down by
# Down, by AdminDown and by silence (one flap of each cause). Bounded: every wait times out.
STRAY_PEER = """
import socket, struct, sys, time
me, beacon = sys.argv[1], sys.argv[2]
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("0.0.0.0", 3784))
rx.settimeout(0.05)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tx.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
tx.bind((me, 49999))
DOWN, INIT, UP, ADMIN = 1, 2, 3, 0
MY = 0x51ee7
ours = 0
state_seen = None

def send(state, final=False):
    flags = (state << 6) | (0x10 if final else 0)
    tx.sendto(struct.pack("!BBBBIIIII", 0x20, flags, 3, 24, MY, ours, 100000, 100000, 0),
              (beacon, 3784))

def pump(state, seconds):
    # sends `state` every 100 ms for `seconds`, answering Polls with Final
    global ours, state_seen
    end = time.time() + seconds
    next_tx = 0.0
    while time.time() < end:
        if time.time() >= next_tx:
            send(state)
            next_tx = time.time() + 0.1
        try:
            data, _ = rx.recvfrom(128)
        except socket.timeout:
            continue
        if len(data) >= 24:
            ours = struct.unpack("!I", data[4:8])[0]
            state_seen = data[1] >> 6
            if data[1] & 0x20:
                send(state, final=True)

def up():
    pump(DOWN, 0.3)
    pump(UP, 0.6)
    if state_seen != UP:
        sys.exit("beacon not Up (state %r)" % state_seen)

up(); pump(DOWN, 0.3)
up(); pump(ADMIN, 0.3)
up()  # then silence: the beacon times out
print("ok")
"""


class MetricsTest(unittest.TestCase):
    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        netlab.require_tools("bird", "birdc", "promtool")
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("metrics")
        self.beacon: netlab.Beacon | None = None
        self.router = self.lab.netns("router")
        self.lb = self.lab.netns("lb")
        self.lab.veth(self.router, "rt0", self.lb, "lb0")
        self.router.addr("rt0", ROUTER + "/24")
        self.lb.addr("lb0", LB + "/24")
        self.peer = self.lab.netns("peer")
        self.lab.veth(self.peer, "p0", self.lb, "lb1")
        self.peer.addr("p0", STRAY + "/24")
        self.lb.addr("lb1", LB2 + "/24")
        conf = netlab.bird_router_config([(VIP, [LB])], interface="rt0", min_rx_ms=INTERVAL_MS,
                                         min_tx_ms=INTERVAL_MS, multiplier=MULT)
        self.bird = netlab.Bird.start(self.router, conf)
        self.routes = netlab.RouteWatcher(self.router, VIP)

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self) and self.beacon is not None:
            netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
        self.lab.close()

    # ------------------------------------------------------------------ helpers

    def start_beacon(self) -> netlab.Beacon:
        config = {
            "daemon": {"metrics_listen": f"127.0.0.1:{PORT}"},
            "bfd": {"desired_min_tx": f"{INTERVAL_MS}ms", "required_min_rx": f"{INTERVAL_MS}ms",
                    "detect_multiplier": MULT},
            "session": [{"peer": ROUTER, "local": LB, "interface": "lb0", "group": "web"}],
            "accept": [{"prefix": "198.18.20.0/24", "group": "dyn", "max_sessions": 4}],
        }
        self.beacon = netlab.Beacon.start(self.lb, config)
        self.routes.wait_for(bool, since=netlab.now(), timeout=15)
        netlab.wait_until(lambda: (self.beacon.session(ROUTER) or {}).get("state") == "Up", 10,
                          what="beacon session Up")
        return self.beacon

    def scrape_text(self) -> str:
        r = self.lb.run([sys.executable, "-c", SCRAPE, f"http://127.0.0.1:{PORT}/metrics"])
        content_type, _, body = r.stdout.partition("\n")
        self.assertIn("text/plain", content_type)
        return body

    def scrape(self) -> list[tuple[str, dict[str, str], float]]:
        return parse_exposition(self.scrape_text())

    def counters(self) -> dict:
        assert self.beacon is not None
        return self.beacon.bfdctl("counters", "--json")

    @staticmethod
    def of_peer(counters: dict, peer: str) -> dict:
        for s in counters["sessions"]:
            if s["peer"] == peer:
                return s
        raise AssertionError(f"no session {peer} in {counters}")

    @staticmethod
    def value(samples, name: str, **labels: str) -> float:
        found = [v for n, l, v in samples
                 if n == name and all(l.get(k) == want for k, want in labels.items())]
        if len(found) != 1:
            raise AssertionError(f"{name}{labels}: {len(found)} samples")
        return found[0]

    def bracketed_read(self):
        """counters, wait for a newer snapshot, scrape, counters."""
        first = self.counters()
        time.sleep(PUBLISH_WAIT_S)
        samples = self.scrape()
        second = self.counters()
        return first, samples, second

    def assert_between(self, first: dict, samples, second: dict, peer: str) -> None:
        a, b = self.of_peer(first, peer), self.of_peer(second, peer)
        for metric, key in (("bfd_beacon_session_packets_received_total", "rx"),
                            ("bfd_beacon_session_packets_sent_total", "tx")):
            v = self.value(samples, metric, peer=peer)
            self.assertLessEqual(a["packets"][key], v, metric)
            self.assertLessEqual(v, b["packets"][key], metric)
        for cause in ("timeout", "peer-down", "peer-admin-down", "local-hold"):
            v = self.value(samples, "bfd_beacon_session_flaps_total", peer=peer, cause=cause)
            self.assertLessEqual(a["flaps"][cause], v, cause)
            self.assertLessEqual(v, b["flaps"][cause], cause)

    # ------------------------------------------------------------------ tests

    def test_scrape_is_clean_and_agrees_with_counters(self) -> None:
        self.start_beacon()
        text = self.scrape_text()
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=20)
        self.assertEqual((lint.returncode, lint.stdout.strip(), lint.stderr.strip()), (0, "", ""),
                         "promtool check metrics found problems")
        figure(f"scrape: {len(text)} bytes, {len(parse_exposition(text))} samples, promtool clean")

        first, samples, second = self.bracketed_read()
        self.assert_between(first, samples, second, ROUTER)
        self.assertGreater(self.value(samples, "bfd_beacon_session_packets_received_total",
                                      peer=ROUTER), 0)
        labels = {"peer": ROUTER, "local": LB, "interface": "lb0", "group": "web",
                  "multihop": "false"}
        self.assertEqual(self.value(samples, "bfd_beacon_session_up", **labels), 1)
        self.assertEqual(self.value(samples, "bfd_beacon_session_state", peer=ROUTER, state="up"), 1)
        self.assertEqual(self.value(samples, "bfd_beacon_session_state", peer=ROUTER,
                                    state="down"), 0)
        self.assertAlmostEqual(self.value(samples, "bfd_beacon_session_detect_time_seconds",
                                          peer=ROUTER), INTERVAL_MS * MULT / 1000.0)
        self.assertAlmostEqual(self.value(samples, "bfd_beacon_session_tx_interval_seconds",
                                          peer=ROUTER), INTERVAL_MS / 1000.0)
        gaps = self.value(samples, "bfd_beacon_session_rx_gap_seconds_count", peer=ROUTER)
        self.assertGreater(gaps, 0)
        # BIRD sends every 75-100 % of 100 ms: almost every gap within 200 ms.
        within = self.value(samples, "bfd_beacon_session_rx_gap_seconds_bucket", peer=ROUTER,
                            le="0.2")
        self.assertGreaterEqual(within / gaps, 0.9)
        change = self.value(samples, "bfd_beacon_session_last_change_timestamp_seconds",
                            peer=ROUTER)
        self.assertLess(abs(change - time.time()), 60)
        self.assertEqual(self.value(samples, "bfd_beacon_sessions", state="up"), 1)
        self.assertEqual(self.value(samples, "bfd_beacon_build_info", version="0.1.0"), 1)
        engine_drops = {l["reason"]: v for n, l, v in samples if n == "bfd_beacon_drops_total"}
        for reason, v in engine_drops.items():
            self.assertLessEqual(first["engine"]["drops"][reason], v, reason)
            self.assertLessEqual(v, second["engine"]["drops"][reason], reason)

        # A hold is one local-hold flap, in bfdctl and in the scrape alike.
        assert self.beacon is not None
        t0 = netlab.now()
        self.beacon.bfdctl("session", "set-state", "down", "--all")
        self.routes.wait_for(lambda h: not h, since=t0, timeout=5)
        first, samples, second = self.bracketed_read()
        self.assertEqual(self.of_peer(second, ROUTER)["flaps"]["local-hold"], 1)
        self.assertEqual(self.value(samples, "bfd_beacon_session_flaps_total", peer=ROUTER,
                                    cause="local-hold"), 1)
        self.assert_between(first, samples, second, ROUTER)
        self.assertEqual(self.value(samples, "bfd_beacon_session_up", peer=ROUTER), 0)
        human = self.beacon.bfdctl("counters", ROUTER).stdout
        self.assertIn("LOCAL-HOLD", human)
        self.assertRegex(human, r"198\.18\.10\.1 .*Up +Down +1")

    def test_flap_causes_and_gone_session_series_disappear(self) -> None:
        self.start_beacon()
        t0 = netlab.now()
        r = self.peer.run([sys.executable, "-c", STRAY_PEER, STRAY, LB2], timeout=30)
        self.assertEqual(r.stdout.strip(), "ok", r.stderr)
        # The session is still there (kept >= 5 s after its last packet, SM-02): bfdctl
        # and the scrape both count one flap of each cause the peer caused.
        first, samples, second = self.bracketed_read()
        flaps = self.of_peer(second, STRAY)["flaps"]
        self.assertEqual(flaps, {"timeout": 1, "peer-down": 1, "peer-admin-down": 1,
                                 "local-hold": 0})
        self.assert_between(first, samples, second, STRAY)
        self.assertEqual(self.value(samples, "bfd_beacon_session_flaps_total", peer=STRAY,
                                    cause="peer-admin-down"), 1)
        self.assertEqual(self.value(samples, "bfd_beacon_session_up", peer=STRAY, group="dyn"), 0)
        self.assertEqual(self.value(samples, "bfd_beacon_passive_sessions_created_total"), 1)
        # Silent now: removed after max(detection time, 5 s), then a new snapshot.
        netlab.wait_until(lambda: self.beacon is not None and not self.beacon.session(STRAY), 15,
                          what="passive session removed")
        removed_after = netlab.now() - t0
        time.sleep(PUBLISH_WAIT_S)
        samples = self.scrape()
        left = [(n, l) for n, l, _ in samples if l.get("peer") == STRAY]
        self.assertEqual(left, [], "series of a removed session linger")
        self.assertEqual(self.value(samples, "bfd_beacon_passive_sessions_removed_total"), 1)
        self.assertTrue([1 for n, l, _ in samples if l.get("peer") == ROUTER])
        figure(f"passive session: 3 flaps (peer-down, peer-admin-down, timeout) counted; removed "
               f"{removed_after:.1f} s after its peer's first packet; its series gone from the "
               f"next scrape")

    def test_process_metrics_are_sane(self) -> None:
        beacon = self.start_beacon()
        samples = self.scrape()
        v = {n: val for n, l, val in samples if n.startswith("process_")}
        now = time.time()
        self.assertLessEqual(v["process_start_time_seconds"], now + 1)
        self.assertGreater(v["process_start_time_seconds"], now - 120)
        self.assertGreater(v["process_resident_memory_bytes"], 1 << 20)
        self.assertGreaterEqual(v["process_virtual_memory_bytes"],
                                v["process_resident_memory_bytes"])
        fds = len(os.listdir(f"/proc/{beacon.proc.pid}/fd"))
        self.assertLess(abs(v["process_open_fds"] - fds), 5)
        self.assertGreaterEqual(v["process_max_fds"], v["process_open_fds"])
        threads = len(os.listdir(f"/proc/{beacon.proc.pid}/task"))
        self.assertEqual(v["process_threads"], threads)
        self.assertGreaterEqual(v["process_cpu_seconds_total"], 0)
        figure(f"process: rss {v['process_resident_memory_bytes'] / 1e6:.1f} MB, "
               f"{v['process_open_fds']:.0f} fds, {v['process_threads']:.0f} threads")


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
