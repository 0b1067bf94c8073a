#!/usr/bin/env python3
"""Integration: every bfdctl command against a live daemon with a session to a real BIRD 2.

Topology (created and removed by the test):

    router netns (BIRD 2)  rt0 ==veth== lb0  lb netns (bfd-beacon)
      198.18.40.1/24                          198.18.40.11/24

BIRD holds `route 198.19.40.40/32 via 198.18.40.11 bfd`, so its BFD session to the beacon
comes Up. The test creates two temporary groups (read and admin; removed at the end, and
leftovers of a crashed run at the next run) and names them [daemon] read_group/admin_group.

  01 as root, every command in human form and with --json: exit 0, JSON parses, key fields
     present; exit 1 for an unknown peer and an invalid config file, 2 for a bad flag, 3 for a
     control socket that does not exist. Each state change is exactly one `audit:` line.
  02 as uid 65534 in read_group only (`setpriv --reuid 65534 --regid 65534 --groups GID`):
     every read command works; every state change (set-state, maintenance, drain, undrain,
     reload) is refused, exit 1, "permission denied", and is one `audit:` line with
     result=refused; the session to BIRD stays Up throughout.

Run by ctest (label integration) or by hand as root:
    python3 test/integration/test_bfdctl.py [name-filter...]
"""

from __future__ import annotations

import grp
import json
import os
import re
import subprocess
import sys
import time
import unittest
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

NOBODY = 65534
ROUTER, LB, VIP = "198.18.40.1", "198.18.40.11", "198.19.40.40/32"
UNKNOWN_PEER = "198.18.40.99"
GROUP_RE = re.compile(r"^bfdcli-(\d+)-[ra]$")
INTERVAL_MS = 100


def remove_stale_groups() -> None:
    """Delete test groups left by runs whose process is gone."""
    for g in grp.getgrall():
        m = GROUP_RE.match(g.gr_name)
        if m and not netlab.pid_alive(int(m.group(1))):
            netlab.run(["groupdel", g.gr_name], check=False)


def has_keys(*keys: str) -> Callable[[Any], bool]:
    return lambda d: isinstance(d, dict) and all(k in d for k in keys)


def session_list(d: Any) -> list[dict[str, Any]]:
    return d.get("sessions", []) if isinstance(d, dict) else d


def one_up_session(d: Any) -> bool:
    s = session_list(d)
    return len(s) == 1 and s[0].get("peer") == ROUTER and s[0].get("state") == "Up"


# Read-only commands: (args, check of the parsed --json output or None when --json is not
# offered). Each also runs without --json and must print something.
def counters_of_router(d: Any) -> bool:
    s = d.get("sessions", []) if isinstance(d, dict) else []
    return ("engine" in d and len(s) == 1 and s[0].get("peer") == ROUTER
            and all(k in s[0] for k in ("packets", "flaps", "transitions", "drops")))


def one_check(d: Any) -> bool:
    return (isinstance(d, list) and len(d) == 1 and d[0].get("name") == "maint"
            and d[0].get("state") == "pass")


def one_group(d: Any) -> bool:
    return (isinstance(d, list) and len(d) == 1 and d[0].get("name") == "web"
            and d[0].get("verdict") == "healthy"
            and (d[0].get("signal") or {}).get("hold") == "none")


# Read-only commands: (args, check of the parsed --json output or None when --json is not
# offered). Each also runs without --json and must print something.
READS: list[tuple[list[str], Callable[[Any], bool] | None]] = [
    (["sessions"], one_up_session),
    (["sessions", ROUTER], one_up_session),
    (["stats"], lambda d: isinstance(d, dict) and d.get("sessions") == 1),
    (["checks"], one_check),
    (["groups"], one_group),
    (["counters"], counters_of_router),
    (["counters", ROUTER], counters_of_router),
    (["status"], lambda d: d.get("in_rotation") is True and has_keys(
        "groups", "maintenance", "drain", "sessions", "why_not")(d)),
    (["version"], has_keys("version", "protocol", "bfdctl_version")),
    (["watch", "--interval", "200ms", "--count", "2"],
     lambda d: isinstance(d, dict) and d.get("reachable") is True),
]


class Bfdctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:  # noqa: N802 (unittest API)
        netlab.require_root()
        netlab.require_tools("bird", "birdc", "setpriv", "groupadd", "groupdel")
        netlab.beacon_bin()
        cls.bfdctl_path = netlab.bfdctl_bin() or "bfdctl"
        remove_stale_groups()
        cls.lab = netlab.Lab("bfdctl")
        try:
            cls._build()
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def _build(cls) -> None:
        lab = cls.lab
        cls.read_name = f"bfdcli-{os.getpid()}-r"
        cls.admin_name = f"bfdcli-{os.getpid()}-a"
        for name in (cls.read_name, cls.admin_name):
            netlab.run(["groupadd", name])
            lab.on_close(lambda n=name: netlab.run(["groupdel", n], check=False))
        cls.read_gid = grp.getgrnam(cls.read_name).gr_gid
        cls.router = lab.netns("router")
        cls.lb = lab.netns("lb")
        lab.veth(cls.router, "rt0", cls.lb, "lb0")
        cls.router.addr("rt0", ROUTER + "/24")
        cls.lb.addr("lb0", LB + "/24")
        conf = netlab.bird_router_config([(VIP, [LB])], interface="rt0", min_rx_ms=INTERVAL_MS,
                                         min_tx_ms=INTERVAL_MS, multiplier=3)
        cls.bird = netlab.Bird.start(cls.router, conf)
        cls.config = {
            "daemon": {"read_group": cls.read_name, "admin_group": cls.admin_name,
                       "state_dir": os.path.join(cls.lb.dir, "state"), "metrics_listen": ""},
            "bfd": {"desired_min_tx": f"{INTERVAL_MS}ms", "required_min_rx": f"{INTERVAL_MS}ms",
                    "detect_multiplier": 3},
            "session": [{"peer": ROUTER, "local": LB, "interface": "lb0", "group": "web"}],
            "check": [{"name": "maint", "type": "file",
                       "path": os.path.join(cls.lb.dir, "maintenance")}],
            "group": [{"name": "web", "checks": ["maint"]}],
        }
        cls.beacon = netlab.Beacon.start(cls.lb, cls.config)
        os.chmod(cls.beacon.config_path, 0o644)
        cls.bird.wait_bfd_state(LB, "Up", timeout=10)
        netlab.wait_until(lambda: (cls.beacon.session(ROUTER) or {}).get("state") == "Up", 10,
                          what="beacon session Up")
        cls.bad_config = os.path.join(cls.lb.dir, "bad.toml")
        with open(cls.bad_config, "w") as f:
            f.write('[daemon]\nno_such_key = 1\n\n[[session]]\npeer = "not-an-address"\n')
        os.chmod(cls.bad_config, 0o644)
        # The unprivileged uid must be able to run bfdctl at all.
        rc, _, err = cls.run_as(False, "--help")
        netlab.require(rc == 0, f"uid {NOBODY} cannot run {cls.bfdctl_path}: {err.strip()}")

    @classmethod
    def tearDownClass(cls) -> None:  # noqa: N802
        cls.lab.close()

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")

    # ------------------------------------------------------------------ helpers

    @classmethod
    def run_as(cls, nobody: bool, *args: str, socket: str | None = None,
               timeout: float = 15) -> tuple[int, str, str]:
        """bfdctl ARGS as root or as uid 65534 in read_group; (exit, stdout, stderr)."""
        cmd = [cls.bfdctl_path]
        if args and args[0] not in ("--help", "check-config"):
            cmd += ["--socket", socket or cls.beacon.sock]
        cmd += list(args)
        if nobody:
            cmd = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--groups",
                   str(cls.read_gid), *cmd]
        env = dict(os.environ, NO_COLOR="1")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr

    def ok(self, nobody: bool, *args: str) -> str:
        rc, out, err = self.run_as(nobody, *args)
        self.assertEqual(rc, 0, f"bfdctl {' '.join(args)}: {out}{err}")
        self.assertTrue(out.strip(), f"bfdctl {' '.join(args)} printed nothing")
        return out

    def ok_json(self, nobody: bool, check: Callable[[Any], bool], *args: str) -> Any:
        out = self.ok(nobody, *args, "--json")
        try:
            if args[0] == "watch":  # one JSON document a line, one line a refresh
                docs = [json.loads(line) for line in out.splitlines() if line.strip()]
                self.assertEqual(len(docs), 2, out[:600])
                self.assertTrue(all(check(d) for d in docs), out[:600])
                return docs
            data = json.loads(out)
        except json.JSONDecodeError as e:
            self.fail(f"bfdctl {' '.join(args)} --json: not JSON ({e}): {out[:300]}")
        self.assertTrue(check(data), f"bfdctl {' '.join(args)} --json: {out[:600]}")
        return data

    def audit_lines(self) -> list[str]:
        return [line[line.index("audit: "):] for line in self.beacon.log_text().splitlines()
                if "audit: " in line]

    def expect_one_audit(self, before: int, cmd: str, result: str) -> str:
        """Exactly one new audit line (the logger writes asynchronously) naming cmd."""
        netlab.wait_until(lambda: len(self.audit_lines()) > before, 5,
                          what=f"audit line for {cmd}")
        time.sleep(0.05)  # a second line for the same request would be written with it
        lines = self.audit_lines()
        self.assertEqual(len(lines), before + 1, "\n".join(lines[before:]))
        self.assertIn(f" cmd={cmd} ", lines[-1])
        self.assertIn(f" result={result}", lines[-1])
        return lines[-1]

    def change(self, nobody: bool, audit_cmd: str, *args: str, json_check=None) -> str:
        """A state-changing command: as root it succeeds, as nobody it is refused; either way
        one audit line."""
        before = len(self.audit_lines())
        full = [*args, "--json"] if json_check else list(args)
        rc, out, err = self.run_as(nobody, *full)
        if nobody:
            self.assertEqual(rc, 1, f"bfdctl {' '.join(full)} as {NOBODY}: {out}{err}")
            self.assertIn("permission denied", err)
            self.assertIn(f"uid {NOBODY} is not in admin group {self.admin_name}", err)
            return self.expect_one_audit(before, audit_cmd, "refused: permission denied")
        self.assertEqual(rc, 0, f"bfdctl {' '.join(full)}: {out}{err}")
        if json_check:
            data = json.loads(out)
            self.assertTrue(json_check(data), f"bfdctl {' '.join(full)}: {out[:600]}")
        return self.expect_one_audit(before, audit_cmd, "ok")

    def hold(self) -> str:
        return (self.beacon.session(ROUTER) or {}).get("hold", "?")

    # ------------------------------------------------------------------ tests

    def run_reads(self, nobody: bool) -> int:
        """Every read command, human and --json; returns how many bfdctl runs."""
        n = 0
        for args, check in READS:
            self.ok(nobody, *args)
            n += 1
            if check is not None:
                self.ok_json(nobody, check, *args)
                n += 1
        return n

    def test_01_root_runs_every_command(self) -> None:
        t0 = netlab.now()
        n = self.run_reads(False)
        out = self.ok(False, "sessions")
        self.assertIn(ROUTER, out)
        self.assertIn("Up", out)
        out = self.ok(False, "watch", "--interval", "200ms", "--count", "2")
        self.assertEqual(out.count("every 200ms"), 2, out)
        n += 2
        # check-config: the daemon's own file is valid; a bad one names file:line:column.
        self.ok(False, "check-config", self.beacon.config_path)
        self.ok_json(False, lambda d: d.get("ok") is True, "check-config", self.beacon.config_path)
        rc, out, err = self.run_as(False, "check-config", self.bad_config)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out + err, re.escape(self.bad_config) + r":2:1: unknown key")
        rc, out, err = self.run_as(False, "check-config", self.bad_config, "--json")
        self.assertEqual(rc, 1, out + err)
        bad = json.loads(out)
        self.assertIs(bad["ok"], False)
        self.assertEqual([(e["line"], e["column"]) for e in bad["errors"]], [(2, 1), (5, 8)])
        n += 5

        # State changes, each one audit line, and each visible in the session.
        for state, hold, flag in (("down", "down", ["--peer", ROUTER]),
                                  ("admin-down", "admin-down", ["--group", "web"]),
                                  ("up", "none", ["--all"])):
            self.change(False, "session-set-state", "session", "set-state", state, *flag)
            netlab.wait_until(lambda: self.hold() == hold, 5, what=f"hold {hold}")
        self.change(False, "session-set-state", "session", "set-state", "down", "--all",
                    json_check=lambda d: d.get("matched") == 1 and d.get("hold") == "down")
        self.change(False, "session-set-state", "session", "set-state", "up", "--all")
        self.change(False, "maintenance", "maintenance", "on", "--reason", "bfdctl test")
        status = self.ok_json(False, lambda d: d.get("in_rotation") is False, "status")
        self.assertIn("bfdctl test", json.dumps(status["maintenance"]), "status names the reason")
        netlab.wait_until(lambda: self.bird.bfd_state(LB) != "Up", 3, what="BIRD sees Down")
        self.change(False, "maintenance", "maintenance", "off",
                    json_check=lambda d: d.get("state") == "off" and d.get("persisted") is True)
        self.change(False, "drain", "drain", "--reason", "bfdctl drain")
        status = self.ok_json(False, lambda d: d["drain"]["draining"] is True, "status")
        self.change(False, "undrain", "undrain",
                    json_check=lambda d: d.get("sessions_in_maintenance") == 0)
        line = self.change(False, "reload", "reload")
        self.assertIn('"wait":false', line)
        line = self.change(False, "reload", "reload", "--wait",
                           json_check=lambda d: d.get("settled") is True
                           and d["sessions"]["unchanged"] == 1)
        self.assertIn('"wait":true', line)
        n += 11

        # Exit codes of failures.
        for args, want in (
                (["session", "set-state", "down", "--peer", UNKNOWN_PEER], 1),
                (["sessions", UNKNOWN_PEER], 1),
                (["sessions", UNKNOWN_PEER, "--json"], 1),
                (["counters", UNKNOWN_PEER], 1),
                (["maintenance", "on", "--group", "nosuch"], 1),
                # An unknown group is refused by every command taking --group, releasing too.
                (["session", "set-state", "up", "--group", "nosuch"], 1),
                (["session", "set-state", "down", "--group", "nosuch"], 1),
                (["maintenance", "off", "--group", "nosuch"], 1),
                (["drain", "--group", "nosuch"], 1),
                (["undrain", "--group", "nosuch"], 1),
                (["check-config", os.path.join(self.lb.dir, "absent.toml")], 1),
                (["--timeout", "bogus", "sessions"], 2),
                (["watch", "--count", "0"], 2),
                (["sessions", "--no-such-flag"], 2),
                (["session", "set-state", "sideways", "--all"], 2),
                (["maintenance", "maybe"], 2),
                (["no-such-command"], 2)):
            rc, out, err = self.run_as(False, *args)
            self.assertEqual(rc, want, f"bfdctl {' '.join(args)}: {out}{err}")
            self.assertTrue(err.strip(), f"bfdctl {' '.join(args)}: no message on stderr")
            if "nosuch" in args:
                self.assertIn("nosuch", err, f"bfdctl {' '.join(args)}: the group is not named")
            n += 1
        for args in (["sessions"], ["status", "--json"], ["maintenance", "on"]):
            rc, out, err = self.run_as(False, *args, socket=os.path.join(self.lb.dir, "nope.sock"))
            self.assertEqual(rc, 3, f"bfdctl {' '.join(args)} on a missing socket: {out}{err}")
            n += 1

        # Through it all the session to BIRD came back Up and holds nothing.
        netlab.wait_until(lambda: self.bird.bfd_state(LB) == "Up", 5, what="BIRD Up again")
        self.assertEqual(self.hold(), "none")
        figure(f"root: {n} bfdctl runs in {netlab.now() - t0:.1f} s")

    def test_02_reader_reads_and_is_refused_every_state_change(self) -> None:
        t0 = netlab.now()
        n = self.run_reads(True)
        self.ok(True, "check-config", self.beacon.config_path)
        n += 1
        refusals = [
            ("session-set-state", ["session", "set-state", "down", "--peer", ROUTER]),
            ("session-set-state", ["session", "set-state", "admin-down", "--group", "web"]),
            ("session-set-state", ["session", "set-state", "up", "--all"]),
            ("maintenance", ["maintenance", "on", "--reason", "nobody"]),
            ("maintenance", ["maintenance", "off"]),
            ("drain", ["drain"]),
            ("undrain", ["undrain"]),
            ("reload", ["reload"]),
            ("reload", ["reload", "--wait"]),
        ]
        for cmd, args in refusals:
            line = self.change(True, cmd, *args)
            self.assertIn(f"uid={NOBODY} ", line)
            n += 1
        self.assertEqual(self.hold(), "none", "a refused request changed the session")
        self.assertEqual(self.bird.bfd_state(LB), "Up")
        status = self.ok_json(True, lambda d: isinstance(d, dict), "status")
        self.assertNotIn("nobody", json.dumps(status), "a refused maintenance took effect")
        figure(f"uid {NOBODY}: {n} bfdctl runs in {netlab.now() - t0:.1f} s, "
               f"{len(refusals)} state changes refused and audited")


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
