#!/usr/bin/env python3
"""Integration: RFC 5880 §6.7 authentication between bfd-beacon and a real BIRD 2.

Topology (created and removed by every test), as in test_bird.py:

    router netns (BIRD 2)  rt0 ==veth== lb0  lb netns (bfd-beacon)
      198.18.10.1/24                          198.18.10.11/24

BIRD holds `route 198.19.99.99/32 via 198.18.10.11 bfd` with authentication in its BFD
interface block; the beacon has one [[session]] with auth_type / auth_keys (key file
mode 0600 in the lab directory).

Scenarios:
  - every type (simple, keyed/meticulous MD5, keyed/meticulous SHA1) comes Up, the route
    is installed, every packet of the beacon carries A = 1, the type and the key id
    (AUTH-01, AUTH-03, AUTH-05, PKT-04); the matrix is printed
  - wrong secret, wrong key id, wrong type, auth missing on one side: stays Down on both
    sides and the beacon counts the drop under its reason (bfdctl counters --json)
  - replay: a captured BIRD packet injected again is dropped as auth_bad_sequence
    (meticulous SHA1, AUTH-09), the session stays Up
  - key rotation: add the new key on both sides, move the signing key on both sides,
    remove the old key (beacon: key file + bfdctl reload; BIRD: birdc configure): the
    session never leaves Up and the route is never withdrawn (AUTH-12)

Run by ctest (label integration) or by hand as root: python3 test/integration/test_auth_bird.py
"""

from __future__ import annotations

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

INTERVAL_MS = 100
MULT = 3
ROUTER = "198.18.10.1"
LB = "198.18.10.11"
VIP = "198.19.99.99/32"

# beacon auth_type -> (BIRD's spelling, wire Auth Type)
TYPES = {
    "simple": ("simple", 1),
    "keyed-md5": ("keyed md5", 2),
    "meticulous-keyed-md5": ("meticulous keyed md5", 3),
    "keyed-sha1": ("keyed sha1", 4),
    "meticulous-keyed-sha1": ("meticulous keyed sha1", 5),
}


def bird_auth(bird_type: str | None, passwords: list[tuple[int, str]]) -> str:
    if bird_type is None:
        return ""
    pw = " ".join(f'password "{secret}" {{ id {kid}; }};' for kid, secret in passwords)
    return f"authentication {bird_type}; {pw}"


class AuthBirdTest(unittest.TestCase):
    def setUp(self) -> None:  # noqa: N802
        netlab.require_root()
        netlab.require_tools("bird", "birdc")
        netlab.beacon_bin()
        netlab.bfdctl_bin()
        self.lab = netlab.Lab("auth")
        self.beacon: netlab.Beacon | None = None
        self.bird: netlab.Bird | None = None
        self.router = self.lab.netns("router")
        self.lb = self.lab.netns("lb")
        self.lab.veth(self.router, "rt0", self.lb, "lb0")
        self.router.addr("rt0", "198.18.10.1/24")
        self.lb.addr("lb0", "198.18.10.11/24")
        self.routes = netlab.RouteWatcher(self.router, VIP)
        self.sniffer = netlab.BfdSniffer(self.router, "rt0")

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            if self.bird is not None:
                netlab.log(f"--- BIRD sessions:\n"
                           f"{netlab.safe_call(lambda: self.bird.birdc('show', 'bfd', 'sessions'))}")
                netlab.log(f"--- BIRD log tail:\n{netlab.read_tail(self.bird.log_path, 40)}")
            if self.beacon is not None:
                netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
        self.lab.close()

    # ------------------------------------------------------------------ helpers

    def bird_config(self, bird_type: str | None, passwords: list[tuple[int, str]]) -> str:
        return netlab.bird_router_config([(VIP, [LB])], interface="rt0", min_rx_ms=INTERVAL_MS,
                                         min_tx_ms=INTERVAL_MS, multiplier=MULT,
                                         bfd_options=bird_auth(bird_type, passwords))

    def start_bird(self, bird_type: str | None, passwords: list[tuple[int, str]]) -> None:
        if self.bird is not None:
            self.bird.stop()
        self.bird = netlab.Bird.start(self.router, self.bird_config(bird_type, passwords))

    def write_keys(self, keys: list[tuple[int, str]]) -> str:
        path = os.path.join(self.lb.dir, "bfd-keys")
        tmp = path + ".new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for kid, secret in keys:
                f.write(f"{kid} {secret}\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return path

    def beacon_config(self, auth_type: str, keys: list[tuple[int, str]]) -> dict:
        session = {"peer": ROUTER, "local": LB, "interface": "lb0", "group": "web"}
        if auth_type != "none":
            session["auth_type"] = auth_type
            session["auth_keys"] = self.write_keys(keys)
        return {"bfd": {"desired_min_tx": f"{INTERVAL_MS}ms", "required_min_rx": f"{INTERVAL_MS}ms",
                        "detect_multiplier": MULT},
                "session": [session]}

    def start_beacon(self, auth_type: str, keys: list[tuple[int, str]]) -> netlab.Beacon:
        if self.beacon is not None:
            self.beacon.stop()
        self.beacon = netlab.Beacon.start(self.lb, self.beacon_config(auth_type, keys))
        return self.beacon

    def wait_up(self, timeout: float = 10) -> float:
        t0 = netlab.now()
        assert self.bird is not None and self.beacon is not None
        self.bird.wait_bfd_state(LB, "Up", timeout=timeout)
        netlab.wait_until(lambda: (self.beacon.session(ROUTER) or {}).get("state") == "Up",
                          timeout, what="beacon session Up")
        return netlab.now() - t0

    def engine_drops(self) -> dict:
        assert self.beacon is not None
        return self.beacon.bfdctl("counters", "--json")["engine"]["drops"]

    def session_drops(self) -> dict:
        assert self.beacon is not None
        return self.beacon.bfdctl("counters", "--json")["sessions"][0]["drops"]

    def assert_stays_down(self, seconds: float, reason: str) -> int:
        """Neither side comes Up for `seconds`; the beacon's counter `reason` grows."""
        assert self.bird is not None and self.beacon is not None
        before = self.engine_drops().get(reason, 0)
        deadline = netlab.now() + seconds
        while netlab.now() < deadline:
            self.assertNotEqual(self.bird.bfd_state(LB), "Up", "BIRD came Up")
            s = self.beacon.session(ROUTER) or {}
            self.assertNotEqual(s.get("state"), "Up", "beacon came Up")
            self.assertEqual(self.routes.nexthops(), frozenset(), "VIP route installed")
            time.sleep(0.2)
        got = self.engine_drops().get(reason, 0) - before
        self.assertGreater(got, 0, f"no {reason} drop counted: {self.engine_drops()}")
        # Charged to the session too (bfdctl counters, kSessionDropReasons).
        self.assertGreater(self.session_drops().get(reason, 0), 0, self.session_drops())
        return got

    # ------------------------------------------------------------------ tests

    def test_every_type_comes_up(self) -> None:  # AUTH-01, AUTH-03, AUTH-05, PKT-04
        matrix = []
        for auth_type, (bird_type, wire_type) in TYPES.items():
            with self.subTest(auth_type=auth_type):
                secret = "pw-8byte" if auth_type == "simple" else f"s3cret-{wire_type}"
                self.start_bird(bird_type, [(3, secret)])
                self.start_beacon(auth_type, [(3, secret)])
                t_up = self.wait_up()
                t0 = netlab.now()
                netlab.wait_until(lambda: self.routes.nexthops() == frozenset({LB}), 5,
                                  what="VIP route installed")
                time.sleep(1.0)  # stays Up for ~10 packets each way
                self.assertEqual(self.bird.bfd_state(LB), "Up")
                s = self.beacon.session(ROUTER)
                self.assertEqual(s["state"], "Up")
                self.assertEqual(s["auth_type"], auth_type)
                self.assertEqual(s["auth_key_id"], 3)
                self.assertEqual(s["counters"]["rx_dropped"], 0, self.session_drops())
                sent = self.sniffer.packets(src=LB, since=t0)
                self.assertGreaterEqual(len(sent), 5)
                for p in sent:
                    self.assertEqual(p["auth_type"], wire_type, p)
                    self.assertEqual(p["key_id"], 3, p)
                    want_len = {1: 24 + 3 + len(secret), 2: 48, 3: 48, 4: 52, 5: 52}[wire_type]
                    self.assertEqual(p["length"], want_len, p)
                    self.assertNotIn(secret.encode().hex(), p["hex"][64:] if wire_type >= 2 else "")
                seqs = [p["seq"] for p in sent]
                if wire_type in (3, 5):  # meticulous: +1 on every packet (AUTH-07)
                    steps = {(b - a) % 2**32 for a, b in zip(seqs, seqs[1:])}
                    self.assertEqual(steps, {1}, seqs)
                elif wire_type in (2, 4):  # keyed, steady Up: unchanged
                    self.assertEqual(len(set(seqs)), 1, seqs)
                # the secret never shows in bfdctl or the log
                self.assertNotIn(secret, self.beacon.bfdctl("sessions", "--json", json_out=False).stdout)
                self.assertNotIn(secret, self.beacon.bfdctl("sessions").stdout)
                self.assertNotIn(secret, self.beacon.bfdctl("counters", "--json", json_out=False).stdout)
                self.assertNotIn(secret, self.beacon.log_text())
                matrix.append(f"{auth_type}: Up in {t_up * 1000:.0f} ms")
                self.beacon.stop()
                self.beacon = None
        figure("auth interop matrix vs BIRD: " + "; ".join(matrix))

    def test_wrong_secret_key_id_type_stay_down(self) -> None:  # AUTH-04, AUTH-08, PKT-21/22
        self.start_bird("meticulous keyed sha1", [(1, "right-secret")])
        results = []
        cases = [
            ("wrong secret", "meticulous-keyed-sha1", [(1, "wrong-secret")], "auth_failed"),
            ("wrong key id", "meticulous-keyed-sha1", [(2, "right-secret")], "auth_unknown_key_id"),
            ("wrong type", "keyed-sha1", [(1, "right-secret")], "auth_wrong_type"),
            ("wrong type (md5)", "meticulous-keyed-md5", [(1, "right-secret")], "auth_wrong_type"),
            ("beacon without auth", "none", [], "auth_present_not_configured"),
        ]
        for what, auth_type, keys, reason in cases:
            with self.subTest(case=what):
                self.start_beacon(auth_type, keys)
                n = self.assert_stays_down(3.0, reason)
                results.append(f"{what}: Down, {reason} +{n}")
                # One warning per reason and second at most (rate-limited), never a secret.
                log = self.beacon.log_text()
                lines = [ln for ln in log.splitlines()
                         if "authentication failure" in ln and reason in ln]
                self.assertGreaterEqual(len(lines), 1, log[-2000:])
                self.assertLessEqual(len(lines), 5, lines)
                self.assertNotIn("right-secret", log)
                self.assertNotIn("wrong-secret", log)
        # BIRD without auth, beacon with: the beacon counts auth_missing.
        self.start_bird(None, [])
        self.start_beacon("keyed-sha1", [(1, "right-secret")])
        n = self.assert_stays_down(3.0, "auth_missing")
        results.append(f"BIRD without auth: Down, auth_missing +{n}")
        # and the right key brings it Up (the failures were the keys, nothing else)
        self.start_bird("meticulous keyed sha1", [(1, "right-secret")])
        self.start_beacon("meticulous-keyed-sha1", [(1, "right-secret")])
        self.wait_up()
        figure("auth failures vs BIRD: " + "; ".join(results))

    def test_replayed_packet_is_dropped(self) -> None:  # AUTH-09
        self.start_bird("meticulous keyed sha1", [(1, "replay-key")])
        self.start_beacon("meticulous-keyed-sha1", [(1, "replay-key")])
        self.wait_up()
        time.sleep(0.5)
        captured = [p for p in self.sniffer.packets(src=ROUTER) if p["state"] == "Up"]
        self.assertTrue(captured, "no Up packet from BIRD captured")
        old = captured[-1]
        before = self.engine_drops().get("auth_bad_sequence", 0)
        # Re-send BIRD's packet from the router namespace: same address, TTL 255, to 3784.
        payload = bytes.fromhex(old["hex"])
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "s.setsockopt(socket.IPPROTO_IP,socket.IP_TTL,255)\n"
                f"s.bind(('{ROUTER}',0))\n"
                f"[s.sendto(bytes.fromhex('{payload.hex()}'),('{LB}',3784)) for _ in range(5)]\n")
        self.router.run([sys.executable, "-c", code])
        netlab.wait_until(lambda: self.engine_drops().get("auth_bad_sequence", 0) >= before + 5, 3,
                          what="5 replayed packets counted as auth_bad_sequence")
        self.assertEqual((self.beacon.session(ROUTER) or {}).get("state"), "Up")
        self.assertEqual(self.beacon.session(ROUTER)["counters"]["down_count"], 0)
        figure(f"replay of BIRD seq {old['seq']}: 5 injected, "
               f"{self.engine_drops()['auth_bad_sequence'] - before} counted auth_bad_sequence")

    def test_unsafe_key_file_refused_at_start_and_reload(self) -> None:
        secret = "not-for-anyone"
        path = self.write_keys([(1, secret)])
        os.chmod(path, 0o644)
        conf, _sock = netlab.Beacon.write_config(self.lb, self.beacon_config("none", []))
        with open(conf, "a") as f:
            f.write(f'auth_type = "keyed-sha1"\nauth_keys = "{path}"\n')
        check = self.lb.run([netlab.beacon_bin(), "--check-config", "--config", conf], check=False)
        out = check.stdout + check.stderr
        self.assertNotEqual(check.returncode, 0, out)
        self.assertIn(path, out)
        self.assertIn("chmod 600", out)
        self.assertNotIn(secret, out)
        # A running daemon keeps its keys when a reload finds the file unsafe.
        os.chmod(path, 0o600)
        self.start_bird("keyed sha1", [(1, secret)])
        self.start_beacon("keyed-sha1", [(1, secret)])
        self.wait_up()
        os.chmod(self.write_keys([(1, secret), (2, "second-key")]), 0o640)
        r = self.beacon.bfdctl("reload", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("group or other permissions", r.stdout + r.stderr)
        self.assertNotIn(secret, r.stdout + r.stderr + self.beacon.log_text())
        time.sleep(1.0)
        s = self.beacon.session(ROUTER)
        self.assertEqual(s["state"], "Up")
        self.assertEqual(s["counters"]["down_count"], 0)
        figure("unsafe key file (0644/0640): --check-config and reload refuse it naming the file; "
               "the running session stays Up")

    def test_key_rotation_never_drops(self) -> None:  # AUTH-12
        kind = "keyed sha1"
        self.start_bird(kind, [(1, "old-key")])
        self.start_beacon("keyed-sha1", [(1, "old-key")])
        self.wait_up()
        netlab.wait_until(lambda: self.routes.nexthops() == frozenset({LB}), 5,
                          what="VIP route installed")
        t_start = netlab.now()

        def reload_beacon(keys: list[tuple[int, str]]) -> None:
            self.write_keys(keys)
            self.beacon.bfdctl("reload")

        def hold(seconds: float) -> None:
            deadline = netlab.now() + seconds
            while netlab.now() < deadline:
                self.assertEqual(self.bird.bfd_state(LB), "Up", "BIRD left Up")
                self.assertEqual((self.beacon.session(ROUTER) or {}).get("state"), "Up")
                self.assertEqual(self.routes.nexthops(), frozenset({LB}), "route withdrawn")
                time.sleep(0.1)

        # 1. the new key on both sides, the old one still signs. BIRD signs with the last
        #    password in its list whose generate window is open, the beacon with the first
        #    line of its key file.
        reload_beacon([(1, "old-key"), (2, "new-key")])
        self.bird.reconfigure(self.bird_config(kind, [(2, "new-key"), (1, "old-key")]))
        hold(1.0)
        # 2. move the signing key on both sides (one after the other: each accepts both)
        reload_beacon([(2, "new-key"), (1, "old-key")])
        hold(0.5)
        t_moved = netlab.now()
        self.bird.reconfigure(self.bird_config(kind, [(1, "old-key"), (2, "new-key")]))
        hold(1.0)
        # 3. the old key goes on both sides
        reload_beacon([(2, "new-key")])
        self.bird.reconfigure(self.bird_config(kind, [(2, "new-key")]))
        hold(1.5)

        s = self.beacon.session(ROUTER)
        self.assertEqual(s["auth_key_id"], 2)
        self.assertEqual(s["counters"]["down_count"], 0)
        self.assertEqual(s["counters"]["rx_dropped"], 0, self.session_drops())
        # BIRD never saw the session leave Up (its log names every state change).
        self.assertNotIn("Down", [p["state"] for p in self.sniffer.packets(src=ROUTER, since=t_start)])
        ours = [p["key_id"] for p in self.sniffer.packets(src=LB, since=t_start)]
        theirs = [p["key_id"] for p in self.sniffer.packets(src=ROUTER, since=t_moved)]
        self.assertEqual(ours[0], 1)
        self.assertEqual(ours[-1], 2)
        self.assertEqual(theirs[-1], 2, "BIRD did not move its signing key")
        figure(f"key rotation: beacon key ids {sorted(set(ours))}, BIRD key ids after the move "
               f"{sorted(set(theirs))}, session Up throughout, 0 drops, route never withdrawn")


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
