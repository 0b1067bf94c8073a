#!/usr/bin/env python3
"""Integration: control socket access control and audit, with real uids and groups.

Topology (created and removed by every test): one namespace "lb" running bfd-beacon with one
session over a veth pair to an empty namespace "peer" (nobody answers; the session only
has to exist for `session set-state` to match it).

    peer netns   pe0 ==veth== lb0   lb netns (bfd-beacon)
      198.18.30.1/24                  198.18.30.11/24

The test creates two temporary groups with groupadd (read and admin; removed at the end, and
leftovers of a crashed run are removed at the next run) and sets them as [daemon] read_group
and admin_group. bfdctl runs as uid/gid 65534 through `setpriv --reuid 65534 --regid 65534`
with `--groups` or `--clear-groups` (util-linux):

  - in read_group: every read-only command works (exit 0); every state change (set-state up,
    down, admin-down; the debug-* hooks in test-hook builds) is refused with exit 1 and
    "permission denied: uid 65534 is not in admin group ..."; the engine is untouched.
  - in both groups: state changes work.
  - in neither: cannot even connect (socket mode 0660, group read_group: exit 3); with the
    socket opened up (chmod 0666) the daemon itself refuses reads (exit 1).
  - root: everything.
  - every state-changing request, allowed or refused, is one `audit:` line naming uid, user,
    pid (bfdctl's own), command, arguments and result; reads are not audited.
  - groups that do not exist: a warning at start, the socket keeps the daemon's group, and
    only root may do anything.

Run by ctest (label integration) or by hand as root:
    python3 test/integration/test_access_control.py [name-filter...]
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import figure  # noqa: E402

NOBODY = 65534
PEER, LB = "198.18.30.1", "198.18.30.11"
GROUP_PREFIX = "bfdacl-"
GROUP_RE = re.compile(r"^bfdacl-(\d+)-[ra]$")
READ_ONLY = [["sessions"], ["sessions", "--json"], ["stats"], ["stats", "--json"], ["version"],
             ["checks"], ["groups", "--json"]]
STATE_CHANGES = [["session", "set-state", "down", "--all"],
                 ["session", "set-state", "admin-down", "--diag", "7", "--peer", PEER],
                 ["session", "set-state", "up", "--all"]]


def remove_stale_groups() -> None:
    """Delete test groups left by runs whose process is gone."""
    for g in grp.getgrall():
        m = GROUP_RE.match(g.gr_name)
        if m and not netlab.pid_alive(int(m.group(1))):
            netlab.run(["groupdel", g.gr_name], check=False)
            netlab.log(f"removed stale test group {g.gr_name}")


def as_nobody(groups: list[int] | None, *args: str, timeout: float = 10
              ) -> tuple[int, int, str, str]:
    """Run bfdctl as uid/gid 65534 with exactly `groups` as supplementary groups (None: none).
    Returns (pid, exit status, stdout, stderr); setpriv execs bfdctl, so pid is bfdctl's."""
    ids = ["--groups", ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
    cmd = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), *ids,
           netlab.bfdctl_bin() or "bfdctl", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=timeout)
    return proc.pid, proc.returncode, out, err


class AccessControl(unittest.TestCase):
    def setUp(self) -> None:  # noqa: N802 (unittest API)
        netlab.require_root()
        netlab.require_tools("setpriv", "groupadd", "groupdel")
        netlab.beacon_bin()
        bfdctl = netlab.bfdctl_bin()
        remove_stale_groups()
        self.lab = netlab.Lab("acl")
        self.beacon: netlab.Beacon | None = None
        self.read_name = f"{GROUP_PREFIX}{os.getpid()}-r"
        self.admin_name = f"{GROUP_PREFIX}{os.getpid()}-a"
        for name in (self.read_name, self.admin_name):
            netlab.run(["groupadd", name])
            self.lab.on_close(lambda n=name: netlab.run(["groupdel", n], check=False))
        self.read_gid = grp.getgrnam(self.read_name).gr_gid
        self.admin_gid = grp.getgrnam(self.admin_name).gr_gid
        try:
            self.nobody_name = pwd.getpwuid(NOBODY).pw_name
        except KeyError:
            self.nobody_name = "?"
        # The unprivileged uid must be able to run bfdctl at all (a build tree under a
        # private home directory would not be reachable).
        _, rc, _, err = as_nobody(None, "--help")
        netlab.require(rc == 0, f"uid {NOBODY} cannot run {bfdctl}: {err.strip()}")

        self.peer = self.lab.netns("peer")
        self.lb = self.lab.netns("lb")
        self.lab.veth(self.peer, "pe0", self.lb, "lb0")
        self.peer.addr("pe0", PEER + "/24")
        self.lb.addr("lb0", LB + "/24")

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self) and self.beacon is not None:
            netlab.log(f"--- bfd-beacon log tail:\n{netlab.read_tail(self.beacon.log_path, 60)}")
        self.lab.close()

    def start(self, read_group: str, admin_group: str) -> netlab.Beacon:
        config = {
            "daemon": {"read_group": read_group, "admin_group": admin_group},
            "bfd": {"desired_min_tx": "100ms", "required_min_rx": "100ms",
                    "detect_multiplier": 3},
            "session": [{"peer": PEER, "local": LB, "interface": "lb0", "group": "web"}],
        }
        self.beacon = netlab.Beacon.start(self.lb, config)
        return self.beacon

    def audit_lines(self, count: int) -> list[str]:
        """Wait until the log holds `count` audit lines (the logger writes asynchronously)."""
        assert self.beacon is not None
        beacon = self.beacon

        def lines() -> list[str] | None:
            found = [line[line.index("audit: "):] for line in beacon.log_text().splitlines()
                     if "audit: " in line]
            return found if len(found) >= count else None

        return netlab.wait_until(lines, 5, what=f"{count} audit lines")

    def hold(self) -> str:
        assert self.beacon is not None
        s = self.beacon.session(PEER)
        assert s is not None
        return s["hold"]

    def test_reader_may_read_but_is_refused_every_state_change(self) -> None:
        beacon = self.start(self.read_name, self.admin_name)
        st = os.stat(beacon.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual((st.st_uid, st.st_gid), (0, self.read_gid))

        t0 = netlab.now()
        for args in READ_ONLY:
            _, rc, out, err = as_nobody([self.read_gid], "--socket", beacon.sock, *args)
            self.assertEqual(rc, 0, f"bfdctl {' '.join(args)} as reader: {err}")
            self.assertTrue(out.strip(), f"bfdctl {' '.join(args)} printed nothing")
        read_ms = (netlab.now() - t0) * 1000
        want = f"permission denied: uid {NOBODY} is not in admin group {self.admin_name}"
        refused: list[tuple[int, list[str]]] = []
        for args in STATE_CHANGES:
            pid, rc, out, err = as_nobody([self.read_gid], "--socket", beacon.sock, *args)
            self.assertEqual(rc, 1, f"bfdctl {' '.join(args)} as reader: {out}{err}")
            self.assertEqual(err.strip(), f"bfdctl: {want}")
            refused.append((pid, args))
        self.assertEqual(self.hold(), "none", "a refused request changed the session")
        lines = self.audit_lines(len(STATE_CHANGES))
        self.assertEqual(len(lines), len(STATE_CHANGES), "\n".join(lines))
        for (pid, args), line in zip(refused, lines):
            self.assertTrue(line.startswith(f"audit: uid={NOBODY} user={self.nobody_name} "
                                            f"pid={pid} cmd=session-set-state args="), line)
            self.assertIn(f'"state":"{args[2]}"', line)
            self.assertTrue(line.endswith(f" result=refused: {want}"), line)
        self.assertIn('"diag":7', lines[1])
        self.assertIn(f'"peer":"{PEER}"', lines[1])

        # Root: allowed, and audited as such.
        root = beacon.bfdctl("session", "set-state", "down", "--all")
        self.assertEqual(root.returncode, 0)
        netlab.wait_until(lambda: self.hold() == "down", 5, what="hold down")
        beacon.bfdctl("session", "set-state", "up", "--all")
        lines = self.audit_lines(len(STATE_CHANGES) + 2)
        self.assertRegex(lines[-2], r"^audit: uid=0 user=root pid=\d+ cmd=session-set-state "
                                    r'args=\{"all":true,"state":"down"\} result=ok$')
        self.assertRegex(lines[-1], r'^audit: uid=0 user=root pid=\d+ cmd=session-set-state '
                                    r'args=\{"all":true,"state":"up"\} result=ok$')
        self.assertEqual(self.hold(), "none")
        self.assertIn(f"[daemon] read_group = {self.read_name} (gid {self.read_gid})",
                      beacon.log_text())
        figure(f"reader: {len(READ_ONLY)} read-only bfdctl runs in {read_ms:.0f} ms, "
               f"{len(STATE_CHANGES)} state changes refused (exit 1) and audited; root allowed")

    def test_debug_hooks_are_state_changing(self) -> None:
        beacon = self.start(self.read_name, self.admin_name)
        # debug-stall-ops exists only in test-hook builds; unknown elsewhere. Either way a
        # reader must not get it to run. Sent raw through setpriv'd python (stdlib only).
        script = ("import json,socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
                  "s.sendall(b'{\"cmd\":\"debug-stall-ops\",\"ms\":3000}\\n');"
                  "print(s.makefile().readline().strip())")
        out = subprocess.run(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                              "--groups", str(self.read_gid), sys.executable, "-c", script,
                              beacon.sock], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        if "unknown command" in out.stdout:
            self.skipTest("daemon built without BEACON_TEST_HOOKS")
        self.assertIn(f"permission denied: uid {NOBODY} is not in admin group {self.admin_name}",
                      out.stdout)
        lines = self.audit_lines(1)
        self.assertIn(" cmd=debug-stall-ops args={\"ms\":3000} result=refused: ", lines[0])

    def test_reload_is_state_changing(self) -> None:
        beacon = self.start(self.read_name, self.admin_name)
        want = f"permission denied: uid {NOBODY} is not in admin group {self.admin_name}"
        pid, rc, out, err = as_nobody([self.read_gid], "--socket", beacon.sock, "reload")
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(err.strip(), f"bfdctl: {want}")
        pid2, rc, out, err = as_nobody([self.read_gid, self.admin_gid], "--socket", beacon.sock,
                                       "reload")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("sessions: 1 unchanged", out)
        lines = self.audit_lines(2)
        self.assertEqual(lines[0], f"audit: uid={NOBODY} user={self.nobody_name} pid={pid} "
                                   f'cmd=reload args={{"wait":false}} result=refused: {want}')
        self.assertEqual(lines[1], f"audit: uid={NOBODY} user={self.nobody_name} pid={pid2} "
                                   'cmd=reload args={"wait":false} result=ok')

    def test_admin_group_member_may_change_state(self) -> None:
        beacon = self.start(self.read_name, self.admin_name)
        groups = [self.read_gid, self.admin_gid]
        pid, rc, out, err = as_nobody(groups, "--socket", beacon.sock, "session", "set-state",
                                      "admin-down", "--group", "web")
        self.assertEqual(rc, 0, out + err)
        netlab.wait_until(lambda: self.hold() == "admin-down", 5, what="hold admin-down")
        _, rc, _, err = as_nobody(groups, "--socket", beacon.sock, "sessions")
        self.assertEqual(rc, 0, err)
        pid2, rc, out, err = as_nobody(groups, "--socket", beacon.sock, "session", "set-state",
                                       "up", "--group", "web")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.hold(), "none")
        # An allowed request that fails is audited as an error, not as a refusal.
        pid3, rc, out, err = as_nobody(groups, "--socket", beacon.sock, "session", "set-state",
                                       "down", "--peer", "198.18.30.99")
        self.assertEqual(rc, 1, out + err)
        lines = self.audit_lines(3)
        self.assertEqual(len(lines), 3, "\n".join(lines))
        self.assertEqual(lines[0], f"audit: uid={NOBODY} user={self.nobody_name} pid={pid} "
                                   'cmd=session-set-state args={"group":"web",'
                                   '"state":"admin-down"} result=ok')
        self.assertTrue(lines[1].startswith(f"audit: uid={NOBODY} user={self.nobody_name} "
                                            f"pid={pid2} "), lines[1])
        self.assertTrue(lines[1].endswith(" result=ok"), lines[1])
        self.assertIn(f"pid={pid3} ", lines[2])
        self.assertIn(" result=error: ", lines[2])

    def test_outsider_cannot_connect_and_is_refused_reads(self) -> None:
        beacon = self.start(self.read_name, self.admin_name)
        _, rc, _, err = as_nobody(None, "--socket", beacon.sock, "sessions")
        self.assertEqual(rc, 3, f"the socket's mode and group must keep others out: {err}")
        # Behind the file permissions, the daemon's own check.
        os.chmod(beacon.sock, 0o666)
        _, rc, out, err = as_nobody(None, "--socket", beacon.sock, "sessions")
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(err.strip(),
                         f"bfdctl: permission denied: uid {NOBODY} is not in read group "
                         f"{self.read_name}")
        pid, rc, _, err = as_nobody(None, "--socket", beacon.sock, "session", "set-state",
                                    "down", "--all")
        self.assertEqual(rc, 1, err)
        self.assertIn(f"is not in admin group {self.admin_name}", err)
        lines = self.audit_lines(1)
        self.assertEqual(len(lines), 1, "reads must not be audited:\n" + "\n".join(lines))
        self.assertIn(f"uid={NOBODY} user={self.nobody_name} pid={pid} ", lines[0])
        self.assertEqual(self.hold(), "none")

    def test_missing_groups_leave_root_only(self) -> None:
        missing_r, missing_a = f"{GROUP_PREFIX}none-r", f"{GROUP_PREFIX}none-a"
        for name in (missing_r, missing_a):
            self.assertRaises(KeyError, grp.getgrnam, name)
        beacon = self.start(missing_r, missing_a)
        log = beacon.log_text()
        self.assertIn(f"[daemon] read_group = {missing_r}: no such group on this host", log)
        self.assertIn(f"[daemon] admin_group = {missing_a}: no such group on this host", log)
        st = os.stat(beacon.sock)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_gid), (0o660, os.getegid()))
        os.chmod(beacon.sock, 0o666)
        _, rc, _, err = as_nobody([self.read_gid, self.admin_gid], "--socket", beacon.sock,
                                  "sessions")
        self.assertEqual(rc, 1, err)
        self.assertIn("(no such group on this host: only root and the admin group may read)", err)
        _, rc, _, err = as_nobody([self.read_gid, self.admin_gid], "--socket", beacon.sock,
                                  "session", "set-state", "down", "--all")
        self.assertEqual(rc, 1, err)
        self.assertIn("(no such group on this host: only root may change state)", err)
        self.assertEqual(beacon.bfdctl("session", "set-state", "down", "--all").returncode, 0)
        lines = self.audit_lines(2)
        self.assertIn("result=refused: permission denied", lines[0])
        self.assertIn("uid=0 user=root", lines[1])
        self.assertTrue(lines[1].endswith("result=ok"), lines[1])


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
