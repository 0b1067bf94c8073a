#!/usr/bin/env python3
"""Integration: bfd-beacon peering with FRR 8.4 bfdd (zebra + bfdd per namespace).

Topologies (created and removed by every test):

  single hop:  bcn netns (bfd-beacon) b0 ==veth== f0 frr netns (zebra + bfdd)
               198.18.20.11/24 fd00:20::11/64 fe80::11   198.18.20.1/24 fd00:20::1/64 fe80::1
  multihop:    bcn b0 == r0 rtr r1 == f0 frr     (rtr forwards; static routes both ways)
               198.18.21.11  .21.1 | .22.1  198.18.22.2   (fd00:21::11 .. fd00:22::2)

Timers are deliberately different on the two sides so swapped fields show:
  beacon: desired_min_tx 50 ms, required_min_rx 60 ms, detect_multiplier 3
  FRR:    transmit-interval 100, receive-interval 100, detect-multiplier 4
so FRR must report remote-transmit-interval 50 / remote-receive-interval 60 /
remote-detect-multiplier 3 once Up (the beacon advertises 1 s while not Up, TMR-04, and
switches with a Poll sequence, TMR-05), and the beacon must compute a detection time of
4 x max(60, 100) = 400 ms (TMR-09) and a transmit interval of max(50, 100) = 100 ms (TMR-01).

Scenarios (issue 2): (a) IPv4 both active, (b) beacon passive (DIS-06), (c) FRR
passive-mode, (d) IPv6 global and link-local (SH-15), (e) multihop IPv4/IPv6 across a
router (MH-01), (f) an [[accept]] rule creating a passive session for FRR's active peer
(PKT-20), including a hold that must survive the session being re-created (SM-22).
Each one: FRR status "up" and beacon state "Up"; `bfdctl session set-state down --all` ->
FRR "down" and it stays down while held (SM-22: the beacon never answers FRR's Init with
Up); `up` -> FRR "up" again. Figures (time to Up, command -> FRR down / up, measured both
by polling vtysh and on the wire with a sniffer in FRR's namespace) are printed.

Run by ctest (label integration) or by hand as root: python3 test/integration/test_frr.py
[name-filter...]
"""

from __future__ import annotations

import os
import sys
import time
import unittest
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import frrlab  # noqa: E402
import netlab  # noqa: E402
from netlab import figure, ms  # noqa: E402

BEACON_TX_MS, BEACON_RX_MS, BEACON_MULT = 50, 60, 3
FRR_TX_MS, FRR_RX_MS, FRR_MULT = 100, 100, 4
FRR_DIAG_PATH_DOWN = "path down"   # how FRR 8.4 prints diag 5

class FrrBeaconTest(unittest.TestCase):

    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        frrlab.require_frr()
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("frr")
        self.beacon: netlab.Beacon | None = None
        self.frr: frrlab.Frr | None = None
        self.sniffer: netlab.BfdSniffer | None = None
        self.bcn = self.lab.netns("bcn")
        self.frr_ns = self.lab.netns("frr")

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            if self.frr is not None:
                netlab.log(f"--- FRR peers:\n{netlab.safe_call(lambda: self.frr.vtysh('show bfd peers'))}")
                netlab.log(f"--- FRR bfdd log tail:\n{self.frr.log_tail('bfdd', 40)}")
            if self.beacon is not None:
                netlab.log(f"--- beacon sessions: {netlab.safe_call(self.beacon.sessions)}")
                netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
        self.lab.close()

    # ------------------------------------------------------------------ topology

    def single_hop(self, link_local: bool = False) -> None:
        self.lab.veth(self.bcn, "b0", self.frr_ns, "f0", up=False)
        for ns, ifname, v4, v6, ll in ((self.bcn, "b0", "198.18.20.11/24", "fd00:20::11/64", "fe80::11/64"),
                                       (self.frr_ns, "f0", "198.18.20.1/24", "fd00:20::1/64", "fe80::1/64")):
            # no kernel-generated link-local: the only fe80 address is ours, usable at once
            ns.ip("link", "set", ifname, "addrgenmode", "none")
            ns.link_up(ifname)
            ns.addr(ifname, v4)
            ns.addr(ifname, v6)
            if link_local:
                ns.addr(ifname, ll)
        self.frr_if = "f0"

    def multihop(self) -> None:
        rtr = self.lab.netns("rtr")
        self.lab.veth(self.bcn, "b0", rtr, "r0")
        self.lab.veth(rtr, "r1", self.frr_ns, "f0")
        self.bcn.addr("b0", "198.18.21.11/24")
        self.bcn.addr("b0", "fd00:21::11/64")
        rtr.addr("r0", "198.18.21.1/24")
        rtr.addr("r0", "fd00:21::1/64")
        rtr.addr("r1", "198.18.22.1/24")
        rtr.addr("r1", "fd00:22::1/64")
        self.frr_ns.addr("f0", "198.18.22.2/24")
        self.frr_ns.addr("f0", "fd00:22::2/64")
        rtr.sysctl("net.ipv4.ip_forward", 1)
        rtr.sysctl("net.ipv6.conf.all.forwarding", 1)
        self.bcn.route("add", "198.18.22.0/24", "via", "198.18.21.1")
        self.bcn.ip("-6", "route", "add", "fd00:22::/64", "via", "fd00:21::1")
        self.frr_ns.route("add", "198.18.21.0/24", "via", "198.18.22.1")
        self.frr_ns.ip("-6", "route", "add", "fd00:21::/64", "via", "fd00:22::1")
        self.frr_if = "f0"

    # ------------------------------------------------------------------ daemons

    def start_frr(self, peers: list[frrlab.FrrPeer]) -> frrlab.Frr:
        for p in peers:
            p.tx_ms, p.rx_ms, p.mult = FRR_TX_MS, FRR_RX_MS, FRR_MULT
        self.frr = frrlab.Frr.start(self.frr_ns, frrlab.bfdd_config(peers))
        return self.frr

    def start_sniffer(self) -> netlab.BfdSniffer:
        self.sniffer = netlab.BfdSniffer(self.frr_ns, self.frr_if)
        return self.sniffer

    def start_beacon(self, sessions: list[dict[str, Any]],
                     accepts: list[dict[str, Any]] | None = None) -> netlab.Beacon:
        config: dict[str, Any] = {
            "bfd": {"desired_min_tx": f"{BEACON_TX_MS}ms", "required_min_rx": f"{BEACON_RX_MS}ms",
                    "detect_multiplier": BEACON_MULT},
        }
        if sessions:
            config["session"] = sessions
        if accepts:
            config["accept"] = accepts
        self.beacon = netlab.Beacon.start(self.bcn, config)
        return self.beacon

    # ------------------------------------------------------------------ checks

    def wait_up(self, label: str, t0: float, frr_peer: str, beacon_peer: str) -> None:
        """Both sides Up (SM-04/05/10 three-way handshake with FRR); print time to Up."""
        assert self.frr is not None and self.beacon is not None
        self.frr.wait_peer_state(frr_peer, "up", timeout=15)
        t_up = netlab.now()
        frrlab.wait_beacon_state(self.beacon, beacon_peer, "Up", timeout=5)
        figure(f"{label}: start -> FRR up: {ms(t0, t_up):.0f} ms")

    def check_timers(self, label: str, frr_peer: str, beacon_peer: str,
                     multihop: bool = False) -> dict[str, Any]:
        """FRR sees the beacon's configured timers (after the Poll that follows Up, TMR-05);
        the beacon sees FRR's and computes the detection time and tx interval from them."""
        assert self.frr is not None and self.beacon is not None
        want = {"remote-transmit-interval": BEACON_TX_MS, "remote-receive-interval": BEACON_RX_MS,
                "remote-detect-multiplier": BEACON_MULT}
        last: dict[str, Any] = {}

        def frr_sees() -> bool:
            p = self.frr.peer(frr_peer) or {}
            last.update(p)
            return all(p.get(k) == v for k, v in want.items())

        try:
            netlab.wait_until(frr_sees, 5, interval=0.05, what="FRR to see the beacon's timers")
        except TimeoutError:
            self.fail(f"{label}: FRR reports remote timers "
                      f"{ {k: last.get(k) for k in want} }, want {want} (peer: {last})")
        p = last
        self.assertEqual(p.get("status"), "up")
        self.assertEqual(bool(p.get("multihop")), multihop)
        # PKT-07 / MH-03: Required Min Echo RX advertised as 0
        self.assertEqual(p.get("remote-echo-receive-interval"), 0, p)
        self.assertEqual(p.get("remote-diagnostic"), "ok", p)
        s = self.beacon.session(beacon_peer)
        assert s is not None
        self.assertEqual(s["state"], "Up")
        self.assertEqual(s["remote_state"], "Up")
        self.assertEqual(s["multihop"], multihop)
        self.assertEqual(s["remote_detect_mult"], FRR_MULT, s)
        self.assertEqual(s["remote_min_rx_us"], FRR_RX_MS * 1000, s)
        self.assertEqual(s["remote_desired_min_tx_us"], FRR_TX_MS * 1000, s)
        self.assertEqual(s["detection_time_us"], FRR_MULT * max(BEACON_RX_MS, FRR_TX_MS) * 1000, s)  # TMR-09
        self.assertEqual(s["tx_interval_us"], max(BEACON_TX_MS, FRR_RX_MS) * 1000, s)  # TMR-01
        # discriminators agree both ways (PKT-06)
        self.assertEqual(s["remote_discr"], p.get("id"), (s, p))
        self.assertEqual(s["local_discr"], p.get("remote-id"), (s, p))
        figure(f"{label}: FRR sees remote tx {p['remote-transmit-interval']} ms / rx "
               f"{p['remote-receive-interval']} ms / mult {p['remote-detect-multiplier']}; beacon "
               f"detection time {s['detection_time_us'] / 1000:.0f} ms")
        return s

    def check_wire(self, beacon_addr: str, dport: int, ttl: int) -> None:
        """Packets from the beacon as FRR's namespace receives them (SH-01/02/06, MH-01)."""
        assert self.sniffer is not None
        pkts = self.sniffer.packets(src=beacon_addr, outgoing=False)
        self.assertTrue(pkts, f"no BFD packet from {beacon_addr} seen in FRR's namespace")
        for p in pkts:
            self.assertEqual(p["dport"], dport, p)
            self.assertEqual(p["ttl"], ttl, p)
            self.assertTrue(49152 <= p["sport"] <= 65535, p)
            self.assertEqual(p["version"], 1, p)
        self.assertEqual(len({p["sport"] for p in pkts}), 1, "source port changed (SH-03)")

    def down_up(self, label: str, frr_peer: str, beacon_peer: str, beacon_addr: str) -> None:
        """set-state down --all -> FRR down, held down; up -> FRR up again (SM-22, SM-21)."""
        assert self.frr is not None and self.beacon is not None and self.sniffer is not None
        frr, beacon, sn = self.frr, self.beacon, self.sniffer
        s_before = beacon.session(beacon_peer)
        assert s_before is not None
        time.sleep(0.3)
        t0 = netlab.now()
        beacon.bfdctl("session", "set-state", "down", "--all")
        t_ret = netlab.now()
        t_poll, _ = frrlab.poll_until(lambda: frr.peer_state(frr_peer) == "down", timeout=3,
                                      interval=0.001)
        time.sleep(0.3)   # let the sniffer's reader catch up
        ours = sn.packets(src=beacon_addr, outgoing=False, since=t0, state="Down")
        theirs = sn.packets(outgoing=True, since=t0, state="Down")
        self.assertTrue(ours, "beacon sent no Down packet after set-state down")
        wire = (f"beacon Down on the wire +{ms(t0, ours[0]['t']):.1f} ms, FRR Down on the wire "
                f"+{ms(t0, theirs[0]['t']):.1f} ms" if theirs else
                f"beacon Down on the wire +{ms(t0, ours[0]['t']):.1f} ms, FRR sent no Down yet")
        figure(f"{label}: set-state down -> FRR down: {ms(t0, t_poll):.1f} ms by vtysh poll "
               f"({wire}; bfdctl returned in {ms(t0, t_ret):.1f} ms)")
        self.assertEqual(ours[0]["diag"], 5, ours[0])
        # held: FRR keeps trying (1 packet/s while down), the beacon must never answer Up
        deadline = netlab.now() + 2.2
        while netlab.now() < deadline:
            st = frr.peer_state(frr_peer)
            self.assertIn(st, ("down", "init"), f"FRR peer went {st} while the beacon holds Down")
            time.sleep(0.1)
        p = frr.peer(frr_peer) or {}
        self.assertEqual(p.get("remote-diagnostic"), FRR_DIAG_PATH_DOWN, p)
        s = beacon.session(beacon_peer)
        assert s is not None
        self.assertEqual(s["state"], "Down", s)
        self.assertEqual(s["hold"], "down", s)
        self.assertEqual(s["local_diag"], 5, s)
        sent = sn.packets(src=beacon_addr, outgoing=False, since=ours[0]["t"])
        self.assertGreaterEqual(len(sent), 2, "the beacon must keep asserting Down")
        self.assertEqual({(x["state"], x["diag"]) for x in sent}, {("Down", 5)})
        # release
        t0 = netlab.now()
        beacon.bfdctl("session", "set-state", "up", "--all")
        t_up, _ = frrlab.poll_until(lambda: frr.peer_state(frr_peer) == "up", timeout=5,
                                    interval=0.002)
        figure(f"{label}: set-state up -> FRR up: {ms(t0, t_up):.0f} ms")
        s = frrlab.wait_beacon_state(beacon, beacon_peer, "Up", timeout=3)
        self.assertEqual(s["hold"], "none", s)
        # same session (not re-created): same local discriminator and source port (SH-03)
        self.assertEqual(s["local_discr"], s_before["local_discr"])
        self.assertEqual(s["source_port"], s_before["source_port"])

    def scenario(self, label: str, frr_peer: str, beacon_peer: str, beacon_addr: str,
                 t0: float, multihop: bool = False) -> None:
        self.wait_up(label, t0, frr_peer, beacon_peer)
        self.check_timers(label, frr_peer, beacon_peer, multihop)
        self.check_wire(beacon_addr, 4784 if multihop else 3784, 254 if multihop else 255)
        self.down_up(label, frr_peer, beacon_peer, beacon_addr)
        # and stays up
        time.sleep(0.5)
        assert self.frr is not None
        self.assertEqual(self.frr.peer_state(frr_peer), "up")

    # ------------------------------------------------------------------ tests

    def test_a_ipv4_both_active(self) -> None:  # SH-09
        self.single_hop()
        self.start_frr([frrlab.FrrPeer("198.18.20.11", local="198.18.20.1", interface="f0")])
        self.start_sniffer()
        t0 = netlab.now()
        self.start_beacon([{"peer": "198.18.20.1", "local": "198.18.20.11", "interface": "b0",
                            "group": "frr"}])
        self.scenario("IPv4 single hop, both active", "198.18.20.11", "198.18.20.1",
                      "198.18.20.11", t0)
        s = self.beacon.session("198.18.20.1") if self.beacon else None
        assert s is not None
        self.assertFalse(s["passive"])
        self.assertEqual(s["group"], "frr")

    def test_b_beacon_passive_frr_active(self) -> None:  # DIS-06
        self.single_hop()
        self.start_sniffer()
        self.start_beacon([{"peer": "198.18.20.1", "local": "198.18.20.11", "interface": "b0",
                            "passive": True}])
        time.sleep(1.5)
        assert self.sniffer is not None
        self.assertEqual(self.sniffer.packets(src="198.18.20.11"), [],
                         "a passive session must send nothing before hearing the peer (DIS-06)")
        t0 = netlab.now()
        self.start_frr([frrlab.FrrPeer("198.18.20.11", local="198.18.20.1", interface="f0")])
        self.scenario("IPv4 beacon passive / FRR active", "198.18.20.11", "198.18.20.1",
                      "198.18.20.11", t0)
        s = self.beacon.session("198.18.20.1") if self.beacon else None
        assert s is not None
        self.assertTrue(s["passive"])

    def test_c_frr_passive_beacon_active(self) -> None:
        self.single_hop()
        self.start_sniffer()
        self.start_frr([frrlab.FrrPeer("198.18.20.11", local="198.18.20.1", interface="f0",
                                       passive=True)])
        time.sleep(1.5)
        assert self.sniffer is not None and self.frr is not None
        self.assertEqual(self.sniffer.packets(outgoing=True), [],
                         "FRR passive-mode sent packets: the test would not prove beacon activity")
        self.assertTrue(self.frr.peer("198.18.20.11").get("passive-mode"))  # type: ignore[union-attr]
        t0 = netlab.now()
        self.start_beacon([{"peer": "198.18.20.1", "local": "198.18.20.11", "interface": "b0"}])
        self.scenario("IPv4 FRR passive / beacon active", "198.18.20.11", "198.18.20.1",
                      "198.18.20.11", t0)

    def test_d_ipv6_global(self) -> None:
        self.single_hop()
        self.start_frr([frrlab.FrrPeer("fd00:20::11", local="fd00:20::1", interface="f0")])
        self.start_sniffer()
        t0 = netlab.now()
        self.start_beacon([{"peer": "fd00:20::1", "local": "fd00:20::11", "interface": "b0"}])
        self.scenario("IPv6 single hop (fd00::)", "fd00:20::11", "fd00:20::1", "fd00:20::11", t0)

    def test_d_ipv6_link_local(self) -> None:  # SH-15
        self.single_hop(link_local=True)
        self.start_frr([frrlab.FrrPeer("fe80::11", local="fe80::1", interface="f0")])
        self.start_sniffer()
        t0 = netlab.now()
        self.start_beacon([{"peer": "fe80::1%b0", "interface": "b0"}])
        self.scenario("IPv6 single hop link-local", "fe80::11", "fe80::1%b0", "fe80::11", t0)
        s = self.beacon.session("fe80::1") if self.beacon else None
        assert s is not None
        self.assertIn("%b0", s["peer"], s)

    def _multihop(self, family: int) -> None:
        self.multihop()
        b, f = ("198.18.21.11", "198.18.22.2") if family == 4 else ("fd00:21::11", "fd00:22::2")
        self.start_frr([frrlab.FrrPeer(b, local=f, multihop=True)])
        self.start_sniffer()
        t0 = netlab.now()
        self.start_beacon([{"peer": f, "local": b, "multihop": True}])
        self.scenario(f"IPv{family} multihop via a router", b, f, b, t0, multihop=True)

    def test_e_multihop_ipv4(self) -> None:  # MH-01
        self._multihop(4)

    def test_e_multihop_ipv6(self) -> None:  # MH-01
        self._multihop(6)

    def test_f_accept_rule(self) -> None:  # PKT-20, SM-22
        self.single_hop()
        self.start_sniffer()
        self.start_beacon([], accepts=[{"prefix": "198.18.20.0/24", "group": "frr-accept",
                                        "max_sessions": 4}])
        assert self.beacon is not None
        self.assertEqual(self.beacon.sessions(), [])
        t0 = netlab.now()
        self.start_frr([frrlab.FrrPeer("198.18.20.11", local="198.18.20.1", interface="f0")])
        self.scenario("IPv4 [[accept]] rule, FRR active", "198.18.20.11", "198.18.20.1",
                      "198.18.20.11", t0)
        s = self.beacon.session("198.18.20.1")
        assert s is not None
        self.assertTrue(s["dynamic"], s)
        self.assertTrue(s["passive"], s)
        self.assertEqual(s["group"], "frr-accept")
        self.assertEqual(len(self.beacon.sessions()), 1)
        # A hold applies to sessions created later: hold, restart FRR (new discriminator,
        # the dynamic session may be re-created), FRR must not come back up.
        self.beacon.bfdctl("session", "set-state", "down", "--all")
        frrlab.poll_until(lambda: self.frr.peer_state("198.18.20.11") == "down", timeout=3)
        assert self.frr is not None
        self.frr.stop()
        time.sleep(FRR_MULT * FRR_TX_MS / 1000 * 3)
        self.start_frr([frrlab.FrrPeer("198.18.20.11", local="198.18.20.1", interface="f0")])
        deadline = netlab.now() + 3.0
        seen = set()
        while netlab.now() < deadline:
            st = self.frr.peer_state("198.18.20.11")
            seen.add(st)
            self.assertNotEqual(st, "up", "re-created passive session came back Up while held")
            time.sleep(0.1)
        sessions = self.beacon.sessions()
        self.assertLessEqual(len(sessions), 1, sessions)
        for x in sessions:
            self.assertNotEqual(x["state"], "Up", x)
        t0 = netlab.now()
        self.beacon.bfdctl("session", "set-state", "up", "--all")
        self.frr.wait_peer_state("198.18.20.11", "up", timeout=5)
        figure(f"accept rule: after FRR restart while held, set-state up -> FRR up: "
               f"{ms(t0, netlab.now()):.0f} ms (FRR states seen while held: {sorted(map(str, seen))})")


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
