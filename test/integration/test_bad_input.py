#!/usr/bin/env python3
"""Integration: bad input never crashes bfd-beacon and never disturbs a healthy session.

  (a) malformed configs: `bfd-beacon --check-config` exits 1 and prints file:line:column for
      each error (TOML syntax, unknown key, bad duration, detect_multiplier 0 (PKT-08), bad
      address, ...); a good config exits 0.
  (b) garbage datagrams to 3784 and 4784 (IPv4 and IPv6) while a session to FRR bfdd is Up:
      random bytes, truncated packets, Version 0/2/7 (PKT-12), Length lies (PKT-13/14),
      Detect Mult 0 (PKT-15), M bit (PKT-16), My Discr 0 (PKT-17), unknown Your Discr
      (PKT-18), YD 0 with Sta Up (PKT-19), A bit without auth configured (PKT-21), TTL 64
      single hop (SH-07) and below the multihop minimum (MH-*), YD-0 floods from many
      sources against an [[accept]] rule with max_sessions (PKT-20 cap). The "targeted" ones
      come from FRR's own address with the session's real discriminator, so only the
      validation order keeps them from tearing the session down. Afterwards the daemon runs,
      the session never flapped (beacon and FRR counters unchanged) and `bfdctl stats`
      counts the drops per reason (PKT-11).
  (c) malformed control requests on the UNIX socket: invalid JSON, unknown command, wrong
      types, unknown fields, binary junk, an oversized line, a connection flood -> error
      responses or a close; the daemon keeps answering `bfdctl sessions`.
  (d) bfdctl usage errors exit 2, an unreachable socket exits 3, a refused request exits 1.
  (e) start-up errors: unknown interface, a local address not on the box, port 3784
      already bound in the namespace -> non-zero exit (not a signal) with a clear message.

Run by ctest (label integration) or by hand as root: python3 test/integration/test_bad_input.py
[name-filter...]. Internal: `test_bad_input.py blast SPEC_JSON` (the packet sender, run
inside the attacker's namespace).
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import frrlab  # noqa: E402
import netlab  # noqa: E402
from netlab import figure  # noqa: E402


def run_beacon_once(args: list[str], ns: netlab.Netns | None = None,
                    timeout: float = 10) -> subprocess.CompletedProcess:
    """Run bfd-beacon to completion (it must exit by itself); kill and fail on timeout."""
    cmd = [netlab.beacon_bin() or "bfd-beacon", *args]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns.name, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        netlab.stop_process(proc, timeout=2)
        out, err = proc.communicate()
        raise AssertionError(f"bfd-beacon {' '.join(args)} did not exit within {timeout}s "
                             f"(it should have refused to start)\nstdout: {out}\nstderr: {err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


# =========================================================================== (a) configs

CONFIG_CASES: list[tuple[str, str, list[tuple[int, str, str]]]] = [
    # (name, text, [(line, column-marker or "", substring expected in the message)])
    ("syntax_error", '[bfd]\ndesired_min_tx = "50ms\n', [(2, "", "syntax")]),
    ("syntax_bad_table", '[daemon]\ncontrol_socket = "/tmp/x.sock"\n[bfd\n', [(3, "", "")]),
    ("duplicate_key", '[bfd]\ndetect_multiplier = 3\ndetect_multiplier = 4\n', [(3, "", "")]),
    ("unknown_key", '[daemon]\ncontrol_socket = "/tmp/x.sock"\n\n[bfd]\n  bogus_key = 1\n',
     [(5, "bogus_key", "bogus_key")]),
    ("unknown_key_in_session", '[[session]]\npeer = "198.18.0.1"\npeeer = "198.18.0.2"\n',
     [(3, "peeer", "peeer")]),
    ("unknown_table", '[bfdd]\ndetect_multiplier = 3\n', [(1, "", "bfdd")]),
    ("duration_no_unit", '[bfd]\ndesired_min_tx = "50"\n', [(2, '"50"', "unit")]),
    ("duration_garbage", '[bfd]\nrequired_min_rx = "fast"\n', [(2, '"fast"', "duration")]),
    ("duration_zero", '[bfd]\nrequired_min_rx = "0ms"\ndesired_min_tx = "0ms"\n',
     [(2, '"0ms"', ""), (3, '"0ms"', "")]),    # PKT-07: never 0
    ("duration_not_string", '[bfd]\ndesired_min_tx = 50\n', [(2, "50", "")]),
    ("detect_multiplier_zero", '[bfd]\ndetect_multiplier = 0\n', [(2, "0", "detect_multiplier")]),
    ("detect_multiplier_256", '[bfd]\ndetect_multiplier = 256\n', [(2, "256", "")]),
    ("detect_multiplier_string", '[bfd]\ndetect_multiplier = "3"\n', [(2, '"3"', "")]),
    ("bad_address", '[[session]]\npeer = "198.18.0.300"\n', [(2, '"198.18.0.300"', "198.18.0.300")]),
    ("bad_local_address", '[[session]]\npeer = "198.18.0.1"\nlocal = "fd00::zz"\n',
     [(3, '"fd00::zz"', "fd00::zz")]),
    ("session_without_peer", '[[session]]\nlocal = "198.18.0.2"\n', [(1, "", "peer")]),
    ("bad_prefix", '[[accept]]\nprefix = "198.18.0.0/33"\n', [(2, '"198.18.0.0/33"', "")]),
    ("bad_shutdown_signal", '[daemon]\nshutdown_signal = "maybe"\n', [(2, '"maybe"', "maybe")]),
    ("two_errors", '[bfd]\ndesired_min_tx = "50"\n\n[[session]]\npeer = "nope"\n',
     [(2, '"50"', ""), (5, '"nope"', "nope")]),
]

GOOD_CONFIG = """\
[daemon]
control_socket = "/tmp/bfd-beacon-never-started.sock"
shutdown_signal = "admin-down"

[bfd]
desired_min_tx = "50ms"
required_min_rx = "300us"
detect_multiplier = 3

[[session]]
peer = "198.18.0.1"
local = "198.18.0.2"
multihop = false
passive = false
group = "web"

[[session]]
peer = "fd00:20::1"
multihop = true
local = "fd00:20::11"
desired_min_tx = "1s"

[[accept]]
prefix = "198.18.0.0/15"
group = "web"
max_sessions = 64
"""


class ConfigTest(unittest.TestCase):
    """(a) --check-config: exit 1, every error as file:line:column: message."""

    def setUp(self) -> None:  # noqa: N802
        netlab.beacon_bin()
        self.dir = tempfile.mkdtemp(prefix="bfd-badcfg-")

    def tearDown(self) -> None:  # noqa: N802
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self, name: str, text: str) -> subprocess.CompletedProcess:
        path = os.path.join(self.dir, f"{name}.toml")
        with open(path, "w") as f:
            f.write(text)
        return run_beacon_once(["--check-config", "--config", path])

    def test_good_config_exits_0(self) -> None:
        r = self.check("good", GOOD_CONFIG)
        self.assertEqual(r.returncode, 0, f"stdout: {r.stdout}\nstderr: {r.stderr}")

    def test_missing_file_exits_1(self) -> None:
        path = os.path.join(self.dir, "absent.toml")
        r = run_beacon_once(["--check-config", "--config", path])
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr)

    def test_writable_config_is_refused(self) -> None:
        """A config someone else may write is refused by --check-config and at start."""
        path = os.path.join(self.dir, "shared.toml")
        with open(path, "w") as f:
            f.write(GOOD_CONFIG)
        os.chmod(path, 0o664)
        for args in (["--check-config", "--config", path], ["--config", path]):
            r = run_beacon_once(args)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stdout}{r.stderr}")
            self.assertIn(f"{path}: is group- or world-writable (mode 0664)", r.stderr)
        self.assertIn("not starting: unsafe configuration file", r.stderr)
        os.chmod(path, 0o644)
        self.assertEqual(run_beacon_once(["--check-config", "--config", path]).returncode, 0)

    def test_malformed_configs(self) -> None:  # PKT-07, PKT-08
        for name, text, expected in CONFIG_CASES:
            with self.subTest(name):
                r = self.check(name, text)
                path = os.path.join(self.dir, f"{name}.toml")
                self.assertEqual(r.returncode, 1, f"{name}: exit {r.returncode}\n{r.stdout}{r.stderr}")
                errors = [ln for ln in r.stderr.splitlines() if ln.startswith(path + ":")]
                self.assertTrue(errors, f"{name}: no 'file:line:column:' line on stderr:\n{r.stderr}")
                lines = text.split("\n")
                for line, marker, needle in expected:
                    match = [e for e in errors if e.startswith(f"{path}:{line}:")]
                    self.assertTrue(match, f"{name}: no error at line {line}: {errors}")
                    e = match[0]
                    col_text = e[len(f"{path}:{line}:"):].split(":", 1)[0]
                    self.assertTrue(col_text.isdigit() and int(col_text) >= 1,
                                    f"{name}: bad column in {e!r}")
                    if marker:
                        want_col = lines[line - 1].index(marker) + 1
                        self.assertEqual(int(col_text), want_col, f"{name}: {e!r}")
                    if needle:
                        self.assertIn(needle.lower(), e.lower(), f"{name}: {e!r}")
                    netlab.log(f"  {name}: {e[len(self.dir) + 1:]}")


# =========================================================================== (b) packets

def bfd_packet(vers: int = 1, diag: int = 0, state: int = 1, flags: int = 0, mult: int = 3,
               length: int = 24, my_discr: int = 0x11111111, your_discr: int = 0,
               tx_us: int = 1_000_000, rx_us: int = 1_000_000, echo_us: int = 0,
               extra: bytes = b"") -> bytes:
    return struct.pack("!BBBBIIIII", (vers << 5) | (diag & 0x1F), ((state & 3) << 6) | (flags & 0x3F),
                       mult & 0xFF, length & 0xFF, my_discr, your_discr, tx_us, rx_us,
                       echo_us) + extra


STATE_ADMIN_DOWN, STATE_DOWN, STATE_INIT, STATE_UP = 0, 1, 2, 3
FLAG_P, FLAG_F, FLAG_C, FLAG_A, FLAG_D, FLAG_M = 0x20, 0x10, 0x08, 0x04, 0x02, 0x01


def build_plan(spec: dict[str, Any]) -> list[tuple[str, str, str, int, int, bytes]]:
    """The datagrams to send: (category, src, dst, dport, ttl, payload). Deterministic."""
    rng = random.Random(spec["seed"])
    real = spec["real_discr"]             # the beacon's discriminator for the FRR session
    peer4, peer6 = spec["peer4"], spec["peer6"]        # FRR's own addresses
    junk4, junk6 = spec["junk4"], spec["junk6"]        # extra attacker addresses
    dst4, dst6 = spec["dst4"], spec["dst6"]
    flood = spec["flood4"]                # sources inside the accept rule's prefix

    def rand_yd() -> int:
        while True:
            v = rng.getrandbits(32)
            if v not in (0, real):
                return v

    plan: list[tuple[str, str, str, int, int, bytes]] = []
    add = plan.append
    targeted = dict(state=STATE_ADMIN_DOWN, diag=7, your_discr=real, my_discr=0x0BADBEEF)
    for i in range(spec["rounds"]):
        # pure garbage, any length (0 included)
        add(("random", junk4, dst4, 3784, 255, rng.randbytes(rng.randrange(0, 96))))
        add(("random", junk6, dst6, 3784, 255, rng.randbytes(rng.randrange(0, 96))))
        add(("random_mh", junk4, dst4, 4784, 255, rng.randbytes(rng.randrange(0, 96))))
        # truncated valid-looking packets (too short for the mandatory section)
        add(("truncated", peer4, dst4, 3784, 255, bfd_packet(**targeted)[:rng.randrange(0, 24)]))
        add(("truncated", peer6, dst6, 3784, 255, bfd_packet(**targeted)[:rng.randrange(0, 24)]))
        # each of the following breaks exactly one rule of RFC 5880 6.8.6 and otherwise
        # would bring the session down (AdminDown with the real Your Discriminator)
        add(("version", peer4, dst4, 3784, 255, bfd_packet(vers=rng.choice((0, 2, 7)), **targeted)))
        add(("length_short", peer4, dst4, 3784, 255, bfd_packet(length=rng.randrange(0, 24), **targeted)))
        add(("length_long", peer4, dst4, 3784, 255, bfd_packet(length=rng.randrange(25, 256), **targeted)))
        add(("mult0", peer4, dst4, 3784, 255, bfd_packet(mult=0, **{**targeted})))
        add(("m_bit", peer4, dst4, 3784, 255, bfd_packet(flags=FLAG_M, **targeted)))
        add(("my_discr0", peer4, dst4, 3784, 255, bfd_packet(**{**targeted, "my_discr": 0})))
        add(("auth_unconfigured", peer4, dst4, 3784, 255,
             bfd_packet(flags=FLAG_A, length=24 + 28, **targeted,
                        extra=bytes([4, 28, 1, 0]) + rng.randbytes(24))))
        add(("ttl64", peer4, dst4, 3784, 64, bfd_packet(**targeted)))            # SH-07
        add(("ttl64", peer6, dst6, 3784, 64, bfd_packet(**targeted)))
        add(("ttl254", peer4, dst4, 3784, 254, bfd_packet(**targeted)))
        add(("ttl64_mh", peer4, dst4, 4784, 64, bfd_packet(**targeted)))        # below min TTL
        add(("unknown_yd", junk4, dst4, 3784, 255, bfd_packet(state=STATE_DOWN, your_discr=rand_yd())))
        add(("unknown_yd", peer4, dst4, 3784, 255,
             bfd_packet(state=STATE_ADMIN_DOWN, your_discr=rand_yd())))
        add(("unknown_yd_mh", junk4, dst4, 4784, 255, bfd_packet(state=STATE_DOWN, your_discr=rand_yd())))
        add(("unknown_yd", junk6, dst6, 4784, 255, bfd_packet(state=STATE_DOWN, your_discr=rand_yd())))
        add(("yd0_up", peer4, dst4, 3784, 255, bfd_packet(state=rng.choice((STATE_INIT, STATE_UP)))))
        add(("no_session", junk4, dst4, 3784, 255, bfd_packet(state=STATE_DOWN)))
        add(("no_session", junk6, dst6, 3784, 255, bfd_packet(state=STATE_DOWN)))
        # YD-0 Down from many sources inside the accept prefix: creation is capped
        add(("accept_flood", flood[i % len(flood)], dst4, 3784, 255,
             bfd_packet(state=STATE_DOWN, my_discr=rng.getrandbits(31) + 1)))
    return plan


def _blast_main(spec_json: str) -> None:
    """Child side: runs inside the attacker namespace, sends the plan, prints a summary."""
    spec = json.loads(spec_json)
    plan = build_plan(spec)
    socks: dict[tuple[str, int], socket.socket] = {}
    port = spec["sport_base"]

    def sock_for(src: str, ttl: int) -> socket.socket:
        nonlocal port
        key = (src, ttl)
        if key not in socks:
            fam = socket.AF_INET6 if ":" in src else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM)
            while True:
                try:
                    s.bind((src, port))
                    break
                except OSError:
                    port += 1
            port += 1
            if fam == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            socks[key] = s
        return socks[key]

    sent: dict[str, int] = {}
    errors = 0
    batch, pause = spec["batch"], spec["pause"]
    deadline = time.monotonic() + 30
    for n, (cat, src, dst, dport, ttl, payload) in enumerate(plan):
        if time.monotonic() > deadline:
            break
        try:
            sock_for(src, ttl).sendto(payload, (dst, dport))
            sent[cat] = sent.get(cat, 0) + 1
        except OSError:
            errors += 1
        if n % batch == batch - 1:
            time.sleep(pause)
    print(json.dumps({"sent": sent, "errors": errors}), flush=True)


def udp_counters(ns: netlab.Netns) -> dict[str, int]:
    """Udp/Udp6 InDatagrams, RcvbufErrors, InErrors, NoPorts from the namespace's
    /proc/net/snmp{,6} (kernel-level drops do not count against the beacon)."""
    out: dict[str, int] = {}
    snmp = ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    for i in range(0, len(snmp) - 1):
        if snmp[i].startswith("Udp:") and snmp[i + 1].startswith("Udp:"):
            keys, vals = snmp[i].split()[1:], snmp[i + 1].split()[1:]
            if keys[0].isalpha():
                for k, v in zip(keys, vals):
                    out[f"Udp.{k}"] = int(v)
                break
    for line in ns.run(["cat", "/proc/net/snmp6"]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("Udp6"):
            out[parts[0]] = int(parts[1])
    return out


def beacon_stats(beacon: netlab.Beacon) -> dict[str, Any]:
    """`bfdctl stats --json` (a bare stats object, or one wrapped in {"stats": ...})."""
    data = beacon.bfdctl("stats", "--json")
    return data.get("stats", data) if isinstance(data, dict) and "drops" not in data else data


class PacketTest(unittest.TestCase):
    """(b) garbage on 3784/4784 while a session to FRR bfdd is Up."""

    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        frrlab.require_frr()
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("badpkt")
        self.beacon: netlab.Beacon | None = None
        self.frr: frrlab.Frr | None = None

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            if self.beacon is not None:
                netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
            if self.frr is not None:
                netlab.log(f"--- FRR bfdd log tail:\n{self.frr.log_tail('bfdd', 30)}")
        self.lab.close()

    def test_garbage_datagrams(self) -> None:  # PKT-11..21, SH-07, PKT-20
        bcn, frr_ns = self.lab.netns("bcn"), self.lab.netns("frr")
        self.lab.veth(bcn, "b0", frr_ns, "f0")
        bcn.addr("b0", "198.18.20.11/24")
        bcn.addr("b0", "fd00:20::11/64")
        frr_ns.addr("f0", "198.18.20.1/24")
        frr_ns.addr("f0", "fd00:20::1/64")
        # attacker addresses live in FRR's namespace: .77 outside the accept rule,
        # .100-.107 inside it (198.18.20.96/28)
        frr_ns.addr("f0", "198.18.20.77/24")
        frr_ns.addr("f0", "fd00:20::77/64")
        flood = [f"198.18.20.{100 + i}" for i in range(8)]
        for a in flood:
            frr_ns.addr("f0", f"{a}/24")
        max_dynamic = 4
        self.frr = frrlab.Frr.start(frr_ns, frrlab.bfdd_config(
            [frrlab.FrrPeer("198.18.20.11", local="198.18.20.1", interface="f0",
                            rx_ms=100, tx_ms=100, mult=3)], debug=False))
        self.beacon = netlab.Beacon.start(bcn, {
            "bfd": {"desired_min_tx": "50ms", "required_min_rx": "50ms", "detect_multiplier": 3},
            "session": [{"peer": "198.18.20.1", "local": "198.18.20.11", "interface": "b0"}],
            "accept": [{"prefix": "198.18.20.96/28", "group": "flood", "max_sessions": max_dynamic}],
        })
        beacon, frr = self.beacon, self.frr
        frr.wait_peer_state("198.18.20.11", "up", timeout=15)
        s0 = frrlab.wait_beacon_state(beacon, "198.18.20.1", "Up", timeout=5)
        time.sleep(0.5)
        s0 = beacon.session("198.18.20.1")
        assert s0 is not None
        frr_c0 = self._frr_counters()
        stats0 = beacon_stats(beacon)
        udp0 = udp_counters(bcn)

        spec = {"seed": 5880, "rounds": 84, "real_discr": s0["local_discr"],
                "peer4": "198.18.20.1", "peer6": "fd00:20::1", "junk4": "198.18.20.77",
                "junk6": "fd00:20::77", "dst4": "198.18.20.11", "dst6": "fd00:20::11",
                "flood4": flood, "sport_base": 61000, "batch": 40, "pause": 0.02}
        plan_size = len(build_plan(spec))
        self.assertLessEqual(plan_size, 2100)
        t0 = netlab.now()
        blast = frr_ns.run([sys.executable, os.path.abspath(__file__), "blast", json.dumps(spec)],
                           timeout=60)
        t_blast = netlab.now() - t0
        summary = json.loads(blast.stdout.strip().splitlines()[-1])
        sent = sum(summary["sent"].values())
        self.assertGreaterEqual(sent, plan_size * 0.99, summary)
        # the session stays Up throughout: watch both sides for a while after the blast
        deadline = netlab.now() + 1.0
        while netlab.now() < deadline:
            self.assertEqual(frr.peer_state("198.18.20.11"), "up", "FRR saw the session leave Up")
            time.sleep(0.1)
        self.assertIsNone(beacon.proc.poll(), f"bfd-beacon died: exit {beacon.proc.returncode}")
        s1 = beacon.session("198.18.20.1")
        assert s1 is not None
        self.assertEqual(s1["state"], "Up", s1)
        for k in ("state_changes", "up_count", "down_count", "detect_timeouts"):
            self.assertEqual(s1["counters"][k], s0["counters"][k], f"session counter {k} changed")
        self.assertEqual(s1["local_discr"], s0["local_discr"])
        self.assertEqual(s1["remote_discr"], s0["remote_discr"])
        frr_c1 = self._frr_counters()
        self.assertEqual((frr_c1["session-up"], frr_c1["session-down"]),
                         (frr_c0["session-up"], frr_c0["session-down"]), "FRR counted a flap")
        # drops are counted per reason
        stats1 = beacon_stats(beacon)
        udp1 = udp_counters(bcn)
        drops = {k: stats1["drops"][k] - stats0["drops"].get(k, 0) for k in stats1["drops"]}
        total_drops = sum(drops.values())
        kernel_lost = sum(udp1.get(k, 0) - udp0.get(k, 0) for k in
                          ("Udp.RcvbufErrors", "Udp.InErrors", "Udp6RcvbufErrors", "Udp6InErrors"))
        rx = stats1["rx_datagrams"] - stats0["rx_datagrams"]
        figure(f"garbage: {sent} datagrams in {t_blast:.2f} s; beacon rx {rx}, drops {total_drops} "
               f"(kernel lost {kernel_lost}); per reason: "
               + ", ".join(f"{k}={v}" for k, v in sorted(drops.items()) if v))
        figure(f"garbage: sent per category: {summary['sent']} (send errors {summary['errors']})")
        for reason in ("too_short", "bad_version", "bad_length", "length_exceeds_payload",
                       "zero_detect_mult", "multipoint_set", "zero_my_discriminator",
                       "unknown_your_discriminator", "zero_your_disc_init_up", "bad_ttl",
                       "no_session_for_peer"):
            self.assertGreater(drops.get(reason, 0), 0, f"no '{reason}' drop counted: {drops}")
        self.assertGreater(drops.get("auth_present_not_configured", 0) + drops.get("bad_auth_layout", 0),
                           0, f"A bit without auth not counted: {drops}")
        # every invalid datagram that reached the beacon is dropped and counted exactly once.
        # The accept flood is the exception: its packets are valid, those from sources that
        # got one of the max_dynamic sessions feed that session; the rest are passive_limit.
        flood_sent = summary["sent"].get("accept_flood", 0)
        invalid_drops = total_drops - drops.get("passive_limit", 0)
        self.assertGreaterEqual(invalid_drops, sent - flood_sent - kernel_lost,
                                f"drops {drops} do not account for {sent - flood_sent} invalid datagrams")
        self.assertLessEqual(invalid_drops, sent - flood_sent, f"more drops than datagrams: {drops}")
        dyn = [x for x in beacon.sessions() if x.get("dynamic")]
        self.assertLessEqual(len(dyn), max_dynamic, dyn)
        self.assertGreater(drops.get("passive_limit", 0), 0, f"accept cap not counted: {drops}")
        figure(f"accept flood from {len(flood)} sources: {len(dyn)} dynamic sessions "
               f"(max_sessions {max_dynamic}), passive_limit drops {drops.get('passive_limit', 0)}")
        # and the daemon still answers
        beacon.bfdctl("sessions", "--json")

    def _frr_counters(self) -> dict[str, Any]:
        assert self.frr is not None
        data = json.loads(self.frr.vtysh("show bfd peers counters json"))
        for p in data:
            if p.get("peer") == "198.18.20.11":
                return p
        raise AssertionError(f"no FRR counters for the beacon: {data}")


# =========================================================================== (c) control socket

class ControlSocketTest(unittest.TestCase):
    """(c) malformed control requests straight on the UNIX socket."""

    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("badctl")
        ns = self.lab.netns("bcn")
        peer = self.lab.netns("peer")
        self.lab.veth(ns, "b0", peer, "p0")
        ns.addr("b0", "198.18.20.11/24")
        peer.addr("p0", "198.18.20.1/24")
        # an active session to a silent peer: Down, sending at 1 s, in group "web"
        self.beacon = netlab.Beacon.start(ns, {
            "session": [{"peer": "198.18.20.1", "local": "198.18.20.11", "interface": "b0",
                         "group": "web"}]})

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 40)}")
        self.lab.close()

    def alive(self) -> None:
        self.assertIsNone(self.beacon.proc.poll(), f"bfd-beacon died: {self.beacon.proc.returncode}")
        sessions = self.beacon.sessions()
        self.assertEqual(len(sessions), 1, sessions)

    def ask(self, payload: bytes) -> list[dict[str, Any]]:
        """Send raw bytes, return the response lines parsed (each must be valid JSON)."""
        raw = frrlab.ctl_exchange(self.beacon.sock, payload)
        out = []
        for line in raw.split(b"\n"):
            if line.strip():
                out.append(json.loads(line))
        return out

    def assert_refused(self, payload: bytes, needle: str = "") -> dict[str, Any]:
        resp = self.ask(payload)
        self.assertEqual(len(resp), 1, f"{payload[:80]!r} -> {resp}")
        self.assertIs(resp[0].get("ok"), False, resp)
        self.assertIsInstance(resp[0].get("error"), str)
        if needle:
            self.assertIn(needle, resp[0]["error"])
        self.alive()
        return resp[0]

    def test_malformed_requests(self) -> None:
        cases: list[tuple[bytes, str]] = [
            (b"this is not json\n", "JSON"),
            (b"{\"cmd\": \"sessions\"\n", "JSON"),            # truncated object
            (b"[\"sessions\"]\n", "object"),
            (b"42\n", "object"),
            (b"\"sessions\"\n", "object"),
            (b"null\n", "object"),
            (b"{}\n", "cmd"),
            (b"{\"cmd\": 5}\n", "cmd"),
            (b"{\"cmd\": null}\n", "cmd"),
            (b"{\"cmd\": \"nope\"}\n", "nope"),
            (b"{\"cmd\": \"sessions\", \"verbose\": true}\n", "verbose"),
            (b"{\"cmd\": \"sessions\", \"id\": [1]}\n", "id"),
            (b"{\"cmd\": \"session-set-state\"}\n", ""),
            (b"{\"cmd\": \"session-set-state\", \"state\": 7, \"all\": true}\n", "state"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"sideways\", \"all\": true}\n", "sideways"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\"}\n", "selector"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"all\": \"yes\"}\n", "all"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"all\": true, \"group\": \"web\"}\n", ""),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"diag\": 99, \"all\": true}\n", "diag"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"diag\": \"5\", \"all\": true}\n", "diag"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"diag\": -1, \"all\": true}\n", "diag"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"peer\": 1}\n", "peer"),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"peer\": \"198.18.99.99\"}\n", ""),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"down\", \"group\": \"nope\"}\n", ""),
            (b"{\"cmd\": \"session-set-state\", \"state\": \"up\", \"diag\": 5, \"all\": true}\n", "diag"),
            (b"{\"cmd\": \"sessions\"}}\n", "JSON"),
            (b"\xff\xfe\x00\x01binary junk\n", ""),
            (b"{\"cmd\": \"\xff\xfe\"}\n", ""),
            (b"{\"cmd\": \"sessions\", \"cmd\": \"stats\", \"x\": " + b"[" * 5000 + b"]" * 5000 + b"}\n", ""),
        ]
        for payload, needle in cases:
            with self.subTest(payload=payload[:60]):
                self.assert_refused(payload, needle)
        # nothing was held by any refused request
        s = self.beacon.sessions()[0]
        self.assertEqual(s["hold"], "none", s)

    def test_id_echo_and_pipelining(self) -> None:
        resp = self.ask(b"garbage\n{\"cmd\":\"sessions\",\"id\":7}\n\n   \n{\"cmd\":\"nope\",\"id\":\"x\"}\n"
                        b"{\"cmd\":\"version\"}\n")
        self.assertEqual(len(resp), 4, resp)        # blank lines get no answer
        self.assertIs(resp[0]["ok"], False)
        self.assertIs(resp[1]["ok"], True)
        self.assertEqual(resp[1].get("id"), 7)
        self.assertEqual(len(resp[1]["sessions"]), 1)
        self.assertIs(resp[2]["ok"], False)
        self.assertEqual(resp[2].get("id"), "x")
        self.assertIs(resp[3]["ok"], True)
        self.alive()

    def test_huge_line(self) -> None:
        for size in (70_000, 1_000_000):
            resp = self.ask(b"{\"cmd\":\"sessions\",\"pad\":\"" + b"a" * size + b"\"}\n")
            # either an error line then close, or just a close; never a success
            self.assertLessEqual(len(resp), 1, resp)
            for r in resp:
                self.assertIs(r.get("ok"), False, r)
            self.alive()
        # a huge line without any newline, then the client goes away
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.beacon.sock)
        try:
            s.sendall(b"x" * 300_000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.close()
        self.alive()

    def test_idle_and_flooding_clients(self) -> None:
        # a few idle connections must not block other clients
        idle = []
        for _ in range(3):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(self.beacon.sock)
            idle.append(c)
        c = idle[0]
        c.sendall(b"{\"cmd\":\"sess")        # half a request, never finished
        t0 = netlab.now()
        self.alive()
        figure(f"control: bfdctl sessions with 3 idle clients: {(netlab.now() - t0) * 1000:.0f} ms")
        # a connection flood: beyond the limit the server answers an error and closes
        flood = []
        refused = 0
        for _ in range(100):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(2)
            try:
                c.connect(self.beacon.sock)
            except OSError:
                refused += 1
                c.close()
                continue
            flood.append(c)
        time.sleep(0.5)
        errors = 0
        for c in flood:
            c.setblocking(False)
            try:
                data = c.recv(4096)
                if data and b"\"ok\":false" in data.replace(b" ", b""):
                    errors += 1
            except (BlockingIOError, ConnectionResetError):
                pass
        figure(f"control: 103 concurrent clients -> {errors} told 'too many connections', "
               f"{refused} connect() refused")
        self.assertGreater(errors + refused, 0, "no connection limit?")
        for c in flood + idle:
            c.close()
        time.sleep(0.3)
        self.alive()
        # clients that vanish mid-request or mid-response
        for _ in range(20):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(self.beacon.sock)
            c.sendall(b"{\"cmd\":\"sessions\"}\n" * 50)
            c.close()
        self.alive()

    def test_bfdctl_refused_exits_1(self) -> None:  # (d) exit 1
        r = self.beacon.bfdctl("session", "set-state", "down", "--peer", "198.18.99.99", check=False)
        self.assertEqual(r.returncode, 1, f"{r.stdout}{r.stderr}")
        self.assertTrue(r.stderr.strip() or r.stdout.strip(), "refusal without a message")
        r = self.beacon.bfdctl("session", "set-state", "down", "--group", "nope", check=False)
        self.assertEqual(r.returncode, 1, f"{r.stdout}{r.stderr}")
        # a malformed address: refused by the daemon (1) or by bfdctl itself (2)
        r = self.beacon.bfdctl("session", "set-state", "down", "--peer", "not-an-address", check=False)
        self.assertIn(r.returncode, (1, 2), f"{r.stdout}{r.stderr}")
        self.assertIn("not-an-address", r.stderr + r.stdout)
        self.alive()


# =========================================================================== (d) bfdctl usage

class BfdctlUsageTest(unittest.TestCase):
    """(d) usage errors exit 2, unreachable daemon exits 3 (no daemon needed)."""

    def bfdctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([netlab.bfdctl_bin() or "bfdctl", *args], capture_output=True,
                              text=True, timeout=20)

    def test_usage_errors_exit_2(self) -> None:
        sock = "/tmp/bfdlab-no-such-dir/control.sock"
        cases = [
            ["bogus"],
            ["--socket"],
            ["--socket", sock, "sessions", "extra"],
            ["--bogus-option", "sessions"],
            ["--socket", sock, "session"],
            ["--socket", sock, "session", "set-state"],
            ["--socket", sock, "session", "set-state", "sideways", "--all"],
            ["--socket", sock, "session", "set-state", "down"],                  # no selector
            ["--socket", sock, "session", "set-state", "down", "--all", "--group", "g"],
            ["--socket", sock, "session", "set-state", "down", "--peer"],
            ["--socket", sock, "session", "set-state", "down", "--diag", "x", "--all"],
            ["--socket", sock, "session", "set-state", "down", "--diag", "32", "--all"],
            ["--socket", sock, "session", "set-state", "down", "--diag", "-1", "--all"],
            ["--socket", sock, "session", "set-state", "up", "--diag", "5", "--all"],
            ["--socket", sock, "--timeout", "soon", "sessions"],
            ["--socket", sock, "--timeout", "0ms", "sessions"],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.bfdctl(*args)
                self.assertEqual(r.returncode, 2, f"bfdctl {' '.join(args)}: exit {r.returncode}\n"
                                 f"{r.stdout}{r.stderr}")
                self.assertTrue(r.stderr.strip(), "usage error without a message on stderr")

    def test_unreachable_exit_3(self) -> None:
        d = tempfile.mkdtemp(prefix="bfd-ctltest-")
        try:
            not_a_socket = os.path.join(d, "file.sock")
            with open(not_a_socket, "w") as f:
                f.write("x")
            stale = os.path.join(d, "stale.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(stale)          # bound, never listening: connect() is refused
            listening_silent = os.path.join(d, "silent.sock")
            silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            silent.bind(listening_silent)
            silent.listen(1)       # accepts but never answers: bfdctl must time out
            for path, extra in ((os.path.join(d, "absent.sock"), []), (not_a_socket, []),
                                (stale, []), (listening_silent, ["--timeout", "300ms"])):
                with self.subTest(path=os.path.basename(path)):
                    t0 = netlab.now()
                    r = self.bfdctl("--socket", path, *extra, "sessions")
                    self.assertEqual(r.returncode, 3, f"{path}: exit {r.returncode}\n{r.stdout}{r.stderr}")
                    self.assertIn(path, r.stderr)
                    self.assertLess(netlab.now() - t0, 10)
            s.close()
            silent.close()
        finally:
            import shutil
            shutil.rmtree(d, ignore_errors=True)


# =========================================================================== (e) start-up errors

class StartupErrorTest(unittest.TestCase):
    """(e) bad environment at start: clear error, non-zero exit, no crash."""

    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        netlab.beacon_bin()
        self.lab = netlab.Lab("badstart")
        self.ns = self.lab.netns("bcn")
        peer = self.lab.netns("peer")
        self.lab.veth(self.ns, "b0", peer, "p0")
        self.ns.addr("b0", "198.18.20.11/24")
        self.ns.addr("b0", "fd00:20::11/64")
        peer.addr("p0", "198.18.20.1/24")

    def tearDown(self) -> None:  # noqa: N802
        self.lab.close()

    def start_fails(self, name: str, sessions: list[dict[str, Any]], needles: list[str],
                    daemon: dict[str, Any] | None = None) -> str:
        path, _sock = netlab.Beacon.write_config(self.ns, {"daemon": daemon or {},
                                                           "session": sessions}, name)
        check = run_beacon_once(["--check-config", "--config", path])
        r = run_beacon_once(["--config", path], ns=self.ns)
        msg = (r.stderr + r.stdout).strip()
        netlab.log(f"  {name}: exit {r.returncode}; --check-config exit {check.returncode}; "
                   f"message: {msg.splitlines()[-1] if msg else ''}")
        self.assertNotEqual(r.returncode, 0, f"{name}: bfd-beacon started anyway\n{msg}")
        self.assertGreater(r.returncode, 0, f"{name}: killed by signal {-r.returncode}\n{msg}")
        self.assertLess(r.returncode, 128, f"{name}: exit {r.returncode} looks like a crash\n{msg}")
        for n in needles:
            self.assertIn(n, r.stderr, f"{name}: message should name {n!r}:\n{r.stderr}")
        # the reason must be the real one (errno text captured before it is clobbered)
        self.assertNotIn(": Success", r.stderr, f"{name}: error message lost its errno")
        self.assertNotIn("terminate called", r.stderr)
        self.assertNotIn("Aborted", r.stderr)
        return r.stderr

    def test_unknown_interface(self) -> None:
        self.start_fails("unknown_if", [{"peer": "198.18.20.1", "interface": "nope0"}], ["nope0"])

    def test_link_local_unknown_interface(self) -> None:
        self.start_fails("ll_unknown_if", [{"peer": "fe80::1%nope1", "interface": "nope1"}], ["nope1"])

    def test_local_address_not_configured(self) -> None:
        self.start_fails("bad_local", [{"peer": "198.18.20.1", "local": "198.18.77.77"}],
                         ["198.18.77.77"])

    def test_local_v6_address_not_configured(self) -> None:
        self.start_fails("bad_local6", [{"peer": "fd00:20::1", "local": "fd00:77::77"}],
                         ["fd00:77::77"])

    def test_port_3784_in_use(self) -> None:
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            with self.subTest(family=fam.name):
                blocker = self.ns.popen([sys.executable, "-c",
                                         "import socket,sys,time\n"
                                         f"s=socket.socket({int(fam)}, socket.SOCK_DGRAM)\n"
                                         f"s.bind(('{addr}', 3784))\n"
                                         "print('bound', flush=True)\n"
                                         "time.sleep(60)\n"], stdout=subprocess.PIPE)
                assert blocker.stdout is not None
                self.assertEqual(blocker.stdout.readline().strip(), b"bound")
                try:
                    self.start_fails(f"port_busy_{fam.name}",
                                     [{"peer": "198.18.20.1", "local": "198.18.20.11"}], ["3784"])
                finally:
                    netlab.stop_process(blocker)

    def test_control_socket_path_impossible(self) -> None:
        # the socket's parent "directory" is a regular file: cannot be created or bound
        blocker = os.path.join(self.ns.dir, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("x")
        sock = os.path.join(blocker, "control.sock")
        self.start_fails("sock_path", [{"peer": "198.18.20.1"}], [sock],
                         daemon={"control_socket": sock})

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "blast":
        _blast_main(sys.argv[2])
        sys.exit(0)
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
