#!/usr/bin/env python3
"""Integration: a seamless HAProxy reload must never withdraw the load balancer, and a kill
shortly after HAProxy was (re)started or reloaded must withdraw it as fast as any other kill.

The bug this pins: the `haproxy-process` check watches the PID from the pidfile with a
pidfd. On a classic daemon-mode reload (`haproxy -D -p PIDFILE -f CFG -sf OLD`) the old
process exits after handing over; when its exit is seen before the rewritten pidfile, the
check reports a death, the beacon sends Down and BIRD withdraws lb1 for about a second.
The fix has the check decide "reload or death" before it reports (pidfile re-read, successor
HAProxy, up to `reload_grace`, default 200 ms; the process must really be HAProxy,
`process_name` default "haproxy"). Neither key is set here: the defaults are under test.

Lab (healthlab.HealthLab; see its docstring): router (BIRD 2, static ECMP route to the VIP
198.19.99.99/32 via lb1 and lb2, `bfd`), lb1/lb2 with HAProxy and bfd-beacon. Once the lab is
up, lb1's beacon is restarted with a config whose group "web" holds all three HAProxy check
types, besides the lab's interface and file checks:
    haproxy       haproxy-http     http://127.0.0.1:8405/beacon-health (monitor-uri; 503 when
                                   backend web has no server UP) 100ms/80ms rise 3 fall 2
    haproxy-proc  haproxy-process  pidfile (defaults: reload_grace, process_name)
    haproxy-sock  haproxy-socket   the stats socket, backend "web" (min_servers_up default 1),
                                   100ms/80ms, rise/fall default 2/2
lb1's beacon logs at debug level, so single failed polls that fall 2 absorbs are counted too
(printed, not asserted). lb1's HAProxy is driven through ReloadableHaproxy (below): the lab's
healthlab.Haproxy plus daemon mode and reloads, on the same pidfile, socket and ports.
lb2 is never touched: it is the control. If lb2 flaps as well, BFD timing on this machine is
the cause (an ENVIRONMENT failure), not the reload.

Scenarios (lb1's HAProxy is switched to the mode each one needs; the others stay as built):
  test_1  daemon mode (`haproxy -D`, no master-worker): RELOADS reloads `-sf <old pid>`, each
          waited for (new pid in the pidfile, old pid gone, new process listening on :80 and
          :8405), a pause, and lb1 back in the route before the next one. Counted per reload:
          lb1 left the route at any moment (every rtnetlink event of the VIP, with its next
          hops, `ip -o monitor route`), lb1's session went Down (bfdctl counters.down_count),
          checks that went pass -> fail (beacon log). Asserted: 0 withdrawals, 0 session
          flaps, and lb1 back within 15 s whenever it did leave (a check stuck failing while
          HAProxy runs is reported as such, with the pidfile and the live HAProxy pids).
  test_1b the same with HARD_RELOADS hard reloads (`-st <old pid>`: the old process is
          terminated at once instead of finishing, so it is normally gone before the new one
          has written the pidfile). This loses the race the bug needs far more often than
          `-sf` does, so it still shows the bug when a build's timing makes `-sf` lucky.
  test_2  daemon mode, kill after (re)start: for each delay in KILL_DELAYS, KILL_REPS times:
          (a) start HAProxy, SIGKILL the pidfile process `delay` after the start command
          returned; (b) start, wait for lb1 in the route, reload, SIGKILL `delay` after the
          reload command returned; plus KILL_BASELINE kills of an HAProxy running for > 1 s
          (the bound "any other kill" is held to). Measured from the kill: the beacon's
          haproxy-proc check pass -> fail (beacon log, 1 ms resolution, wall clock mapped to
          monotonic), and where lb1 was in the route at the kill, lb1's next hop removed on the
          router (rtnetlink). lb1 is rarely back in the route 0.1-0.3 s after a fresh start
          (re-adding takes ~1 s: BIRD sends once per second while the session is not Up), so
          (a) is measured at the check, (b) at the check and the route.
          Asserted: every kill is noticed within KILL_BOUND_MS (default 300 = the 200 ms
          default reload_grace + 100 ms) and no later than the baseline max + 100 ms; the route
          follows within KILL_BOUND_MS; for DEAD_HOLD_S (0.6 s, beyond the check's 500 ms
          pidfile re-read) after each kill HAProxy stays dead, and the check must stay failed
          and lb1 out of the route.
  test_3  master-worker mode (`haproxy -W -D`, the lab's default): RELOADS reloads by SIGUSR2
          to the master, each waited for (same master pid, new worker listening, old workers
          gone). Same counting and assertion as test_1 (the master keeps its pid, so this
          passed before the fix too: it guards against the fix breaking it).
  test_4  master-worker mode, kill after (re)start: as test_2, SIGKILL on the master (its
          orphaned workers, still HAProxy processes, are reaped afterwards).

Failure messages say who failed: "PRODUCT:" (the beacon withdrew on a reload, noticed a kill
late or never, did not recover), "HARNESS:" (HAProxy did not start/reload as planned; raised
as errors, not failures), "ENVIRONMENT:" (the control LB flapped too). Diagnostics
(HealthLab.dump(), logs, route events) are printed for a failing test. A test that leaves
lb1 out of the route makes the next one restart lb1's HAProxy first (logged), so one
failure does not cascade.

Timers: BFD RELOAD_TEST_INTERVAL_MS (default 10) x 3 between router and beacons; 10 ms x 3
ran without a single flap of the control LB over every run on the 2-vCPU VM this was written
on, HAProxy reloads included. Other knobs (env): RELOAD_TEST_RELOADS (20),
RELOAD_TEST_HARD_RELOADS (20; 0 skips test_1b), RELOAD_TEST_PAUSE_S (0.4),
RELOAD_TEST_KILL_REPS (5), RELOAD_TEST_KILL_BASELINE (3), RELOAD_TEST_KILL_BOUND_MS (300).
Runtime about 2.5 minutes there (more when the beacon fails: each recovery wait is 15 s).
A race that loses once in ~100 reloads needs more of them than the defaults: stress with
    RELOAD_TEST_RELOADS=80 RELOAD_TEST_HARD_RELOADS=40 python3 test_haproxy_reload.py test_1

Run by ctest (label integration) or by hand as root:
    python3 test/integration/test_haproxy_reload.py [name-filter...]
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import healthlab  # noqa: E402
import netlab  # noqa: E402
from netlab import figure, ms  # noqa: E402

INTERVAL_MS = int(os.environ.get("RELOAD_TEST_INTERVAL_MS", "10"))
MULT = 3
RELOADS = int(os.environ.get("RELOAD_TEST_RELOADS", "20"))
HARD_RELOADS = int(os.environ.get("RELOAD_TEST_HARD_RELOADS", "20"))
PAUSE_S = float(os.environ.get("RELOAD_TEST_PAUSE_S", "0.4"))
KILL_DELAYS = (0.1, 0.3, 1.0)
KILL_REPS = int(os.environ.get("RELOAD_TEST_KILL_REPS", "5"))
KILL_BASELINE = int(os.environ.get("RELOAD_TEST_KILL_BASELINE", "3"))
KILL_BOUND_MS = float(os.environ.get("RELOAD_TEST_KILL_BOUND_MS", "300"))
BASELINE_SLACK_MS = 100.0
SETTLE_S = 1.0          # after the last reload: late effects still count
RECOVER_S = 15.0        # lb1 back in the route (rise + BIRD's 1 s idle tx + slack)
NOTICE_WAIT_S = 2.0     # how long to look for the beacon's reaction to a kill
DEAD_HOLD_S = 0.6       # HAProxy stays dead this long after a kill (> the check's 500 ms
                        # pidfile re-read): the check must stay failed, lb1 out of the route

PROC_CHECK = "haproxy-proc"
SOCK_CHECK = "haproxy-sock"
ROUTER = healthlab.ROUTER_LB_ADDR


class HarnessError(RuntimeError):
    """The lab did not do what the test asked of it (HAProxy, namespaces, timing): not a
    finding about the beacon. unittest reports it as an error, not a failure."""


# --------------------------------------------------------------------------- route history

class RouteHistory:
    """Every rtnetlink change of the route to one prefix, with the next hops it carried.

    netlab.RouteWatcher stamps events but reads the next hops afterwards with `ip route`, so
    a withdrawal that is undone quickly could be missed. `ip -o monitor route` prints each
    event on one line, next hops included, so nothing is lost:
        "198.19.99.99 proto bird metric 32 \\\tnexthop via A dev br-lb weight 1 \\\t..."
        "198.19.99.99 via B dev br-lb proto bird metric 32"
        "Deleted 198.19.99.99 ..."  (no route: empty set)"""

    def __init__(self, ns: netlab.Netns, prefix: str):
        net = ipaddress.ip_network(prefix, strict=False)
        self.keys = {str(net.network_address), str(net)}
        self.proc = subprocess.Popen(["ip", "-o", "-n", ns.name, "-4", "monitor", "route"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        ns.lab.processes.append(self.proc)
        self.lock = threading.Lock()
        self.events: list[tuple[float, frozenset[str], str]] = []
        threading.Thread(target=self._reader, daemon=True).start()
        time.sleep(0.05)   # let `ip monitor` subscribe
        self.initial = netlab.route_nexthops(ns.name, prefix)
        self.t_start = netlab.now()

    def _reader(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t = netlab.now()
            words = line.split()
            if not words:
                continue
            deleted = words[0] == "Deleted"
            dst = words[1] if deleted and len(words) > 1 else words[0]
            if dst not in self.keys:
                continue
            hops = frozenset() if deleted else frozenset(re.findall(r"\bvia (\S+)", line))
            with self.lock:
                self.events.append((t, hops, line.strip()))

    def between(self, t0: float, t1: float) -> list[tuple[float, frozenset[str], str]]:
        with self.lock:
            return [e for e in self.events if t0 <= e[0] < t1]

    def hops_at(self, t: float) -> frozenset[str]:
        """Next hops in force at time t (the last event before t, or the initial route)."""
        hops = self.initial
        with self.lock:
            for et, eh, _ in self.events:
                if et > t:
                    break
                hops = eh
        return hops

    def lines(self, t0: float, t1: float) -> list[str]:
        return [f"+{ms(t0, t):.1f} ms {sorted(h)}" for t, h, _ in self.between(t0, t1)]


# --------------------------------------------------------------------------- beacon log

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:?\d\d) (\w+) (.*)$")


class BeaconLog:
    """Reads a beacon log incrementally; stamps each line with the monotonic clock. The daemon
    logs wall-clock time truncated to the millisecond: a stamp is taken as the middle of its
    millisecond and mapped with the wall-minus-monotonic offset sampled when it is read, so
    figures derived from it are good to about +-0.5 ms."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0          # bytes read so far
        self.lines: list[tuple[float, str, str]] = []   # (monotonic, level, text)

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        clock = time.time() - time.monotonic()
        for raw in data[:end].decode(errors="replace").splitlines():
            m = _LOG_LINE.match(raw)
            if not m:
                continue
            try:
                wall = datetime.datetime.fromisoformat(m.group(1)).timestamp()
            except ValueError:
                continue
            self.lines.append((wall + 0.0005 - clock, m.group(2), m.group(3)))

    def between(self, t0: float, t1: float, pattern: str | None = None) -> list[tuple[float, str]]:
        self.poll()
        rx = re.compile(pattern) if pattern else None
        return [(t, text) for t, _lvl, text in self.lines
                if t0 <= t < t1 and (rx is None or rx.search(text))]

    def wait_for(self, pattern: str, since: float, timeout: float) -> float | None:
        """Monotonic stamp of the first line at/after `since` matching `pattern`, or None."""
        rx = re.compile(pattern)
        deadline = netlab.now() + timeout
        while True:
            self.poll()
            for t, _lvl, text in self.lines:
                if t >= since and rx.search(text):
                    return t
            if netlab.now() >= deadline:
                return None
            time.sleep(0.01)


def check_fail_pattern(check: str) -> str:
    return rf"^check {re.escape(check)}: pass -> fail\b"


SESSION_DOWN = rf"^peer {re.escape(ROUTER)} group web: Up -> Down\b"
SESSION_UP = rf"^peer {re.escape(ROUTER)} group web: \w+ -> Up\b"


# --------------------------------------------------------------------------- records

@dataclass
class ReloadRecord:
    index: int
    t0: float                 # just before the reload command
    t_cmd: float              # the command returned / the signal was sent
    t_done: float             # the reload was complete
    old: list[int]
    new: list[int]
    t_end: float = 0.0        # end of this reload's window (start of the next one)
    lb1_gone: list[float] = field(default_factory=list)   # events without lb1 (ms after t0)
    lb2_gone: list[float] = field(default_factory=list)
    downs_before: tuple[int, int] = (0, 0)   # lb1's, lb2's session counters.down_count
    lb1_downs: int = 0        # down_count deltas over the window
    lb2_downs: int = 0
    check_fails: list[str] = field(default_factory=list)  # "check X: pass -> fail (...)" lines
    poll_fails: dict[str, int] = field(default_factory=dict)   # "check: reason" -> failed polls
    session_lines: list[str] = field(default_factory=list)


@dataclass
class KillRecord:
    kind: str                 # "start", "reload" or "steady"
    delay: float              # planned delay after the start/reload command (s)
    actual_delay: float       # kill time - command time (s)
    pid: int
    in_route: bool            # lb1 in the route at the kill
    check_ms: float | None    # kill -> haproxy-proc pass -> fail (None: never seen)
    check_was_passing: bool   # the check had passed since the (re)start
    route_ms: float | None    # kill -> lb1 removed (None: not in route / not removed)
    readded_after_kill: bool  # lb1 appeared in the route while HAProxy was dead
    repassed_after_kill: str  # the check's "-> pass" line while HAProxy was dead, if any


# --------------------------------------------------------------------------- HAProxy

class ReloadableHaproxy(healthlab.Haproxy):
    """healthlab.Haproxy (master-worker, `haproxy -W -D -p PIDFILE -f CFG`) that can also run in
    classic daemon mode (`haproxy -D -p PIDFILE -f CFG`, the config without its `master-worker`
    line: the pidfile holds the one serving process) and do seamless reloads. Same pidfile,
    stats socket and ports in both modes, so the beacon's checks need no change.

    Errors are HarnessError: HAProxy not doing what it was asked is never the beacon's fault."""

    def __init__(self, ns: netlab.Netns, backend_port: int):
        super().__init__(ns, backend_port)
        self.backend_port = backend_port
        self.master_worker = True
        self.started_at: float | None = None   # netlab.now() when the last start command returned

    def set_master_worker(self, on: bool) -> None:
        """Switch mode (only while stopped): rewrites the config."""
        if self.master_pid() is not None:
            raise HarnessError(f"HARNESS: HAProxy in {self.ns.name} is running; cannot switch mode")
        text = healthlab.HAPROXY_CFG.format(sock=self.sock, pidfile=self.pidfile, vip=healthlab.VIP,
                                            backend=healthlab.BACKEND_ADDR, port=self.backend_port)
        if not on:
            text = text.replace("    master-worker\n", "", 1)
        with open(self.cfg, "w") as f:
            f.write(text)
        self.master_worker = on

    def serving_pids(self) -> list[int]:
        """The processes that serve: the workers (master-worker) or the daemon itself."""
        pid = self.master_pid()
        if pid is None:
            return []
        return healthlab.children_of(pid) if self.master_worker else [pid]

    def listening_pids(self, port: int) -> set[int]:
        """Pids holding a listening TCP socket on `port` in the namespace (`ss -p`)."""
        out = self.ns.run(["ss", "-Hltnp", f"sport = :{port}"], check=False).stdout
        return {int(m) for m in re.findall(r"pid=(\d+)", out)}

    def _serving(self, pids: list[int]) -> bool:
        return bool(pids) and all(set(pids) & self.listening_pids(p) for p in (80, 8405))

    def _daemonise(self, args: list[str], what: str, timeout: float) -> float:
        """Run `haproxy ARGS` (which daemonises); returns the moment it had returned."""
        p = self.ns.popen(["haproxy", *args], log_path=self.log_path)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"HARNESS: {what}: `haproxy {' '.join(args)}` did not daemonise "
                               f"within {timeout} s") from None
        t = netlab.now()
        if p.returncode != 0:
            raise HarnessError(f"HARNESS: {what}: haproxy exited {p.returncode}: "
                               f"{netlab.read_tail(self.log_path)}")
        return t

    def start(self, timeout: float = 10) -> int:
        """Start in the current mode; wait for a new pid in the pidfile whose processes listen
        on :80 and :8405. Returns the pidfile's pid; sets started_at."""
        old = self.read_pid()
        mode = ["-W", "-D"] if self.master_worker else ["-D"]
        self.started_at = self._daemonise([*mode, "-p", self.pidfile, "-f", self.cfg],
                                          "start", timeout)

        def ready() -> bool:
            pid = self.read_pid()
            return (pid is not None and pid != old and netlab.pid_alive(pid)
                    and self._serving(self.serving_pids()))

        try:
            netlab.wait_until(ready, timeout, interval=0.01, what=f"HAProxy in {self.ns.name}")
        except TimeoutError as e:
            raise HarnessError(f"HARNESS: {e} (pidfile {self.read_pid()}); log:\n"
                               f"{netlab.read_tail(self.log_path, 10)}") from None
        pid = self.read_pid()
        assert pid is not None
        return pid

    def reload(self, timeout: float = 10, hard: bool = False) -> tuple[float, list[int], list[int]]:
        """Seamless reload, waited for until complete. Daemon mode: `haproxy -D -p PIDFILE -f
        CFG -sf OLD` (the new process binds, then tells OLD to finish; OLD exits); hard=True
        uses `-st OLD` (OLD is terminated at once instead of finishing). Master-worker:
        SIGUSR2 to the master (it re-executes itself keeping its pid, forks a new worker, the
        old worker finishes). Complete: the new process/worker alive and listening on :80 and
        :8405, every old one gone, the pidfile naming the new process / the same master.

        Returns (time the command had been issued: `haproxy` returned / signal sent, old
        serving pids, new serving pids)."""
        master = self.master_pid()
        if master is None:
            raise HarnessError(f"HARNESS: HAProxy in {self.ns.name} is not running: cannot reload")
        old = self.serving_pids()
        if self.master_worker:
            if hard:
                raise HarnessError("HARNESS: a hard reload is a daemon-mode (-st) thing")
            os.kill(master, signal.SIGUSR2)
            t_cmd = netlab.now()
        else:
            t_cmd = self._daemonise(["-D", "-p", self.pidfile, "-f", self.cfg,
                                     "-st" if hard else "-sf", *map(str, old)], "reload", timeout)
        state: dict[str, Any] = {}

        def done() -> bool:
            pid = self.read_pid()   # None while HAProxy rewrites it (truncate, then write)
            if self.master_worker:
                ok = pid == master and netlab.pid_alive(master)
                new = [w for w in healthlab.children_of(master) if w not in old] if ok else []
            else:
                new = [pid] if pid is not None and pid not in old and netlab.pid_alive(pid) else []
            state.update(pidfile=pid, new=new, old_alive=[p for p in old if netlab.pid_alive(p)])
            return bool(new) and not state["old_alive"] and self._serving(new)

        try:
            netlab.wait_until(done, timeout, interval=0.005, what=f"HAProxy reload in {self.ns.name}")
        except TimeoutError as e:
            raise HarnessError(f"HARNESS: {e}: pidfile {state.get('pidfile')}, old {old} still "
                               f"alive {state.get('old_alive')}, new {state.get('new')}; log:\n"
                               f"{netlab.read_tail(self.log_path, 10)}") from None
        return t_cmd, old, list(state["new"])


# --------------------------------------------------------------------------- the test

def with_haproxy_checks(lb: healthlab.Lb, cfg: dict[str, Any]) -> dict[str, Any]:
    """lb's beacon config (healthlab.Lb.config) plus a haproxy-socket check (haproxy-http and
    haproxy-process are in the lab's group already) and debug logging."""
    cfg = dict(cfg)
    cfg["daemon"] = {**cfg.get("daemon", {}), "log_level": "debug"}
    cfg["check"] = list(cfg["check"]) + [
        {"name": SOCK_CHECK, "type": "haproxy-socket", "socket": lb.haproxy.sock,
         "backend": "web", "interval": "100ms", "timeout": "80ms"}]
    group = dict(cfg["group"][0])
    group["checks"] = list(group["checks"]) + [SOCK_CHECK]
    cfg["group"] = [group]
    return cfg


def ms_or_zero(t: float | None, t0: float) -> float:
    """ms from t0 to t, 0 when t is None."""
    return ms(t0, t) if t is not None else 0.0


def pct(values: list[float], p: float) -> float:
    return healthlab.percentile(values, p)


def haproxy_pids(ns: netlab.Netns) -> list[int]:
    """Every process named haproxy inside ns (not zombies)."""
    out = []
    for pid in netlab.netns_pids(ns.name):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "haproxy" and netlab.pid_alive(pid):
                    out.append(pid)
        except OSError:
            continue
    return out


class HaproxyReloadTest(healthlab.LabTestMixin, unittest.TestCase):
    hl: healthlab.HealthLab
    lab: netlab.Lab
    history: RouteHistory
    log1: BeaconLog

    @classmethod
    def setUpClass(cls) -> None:  # noqa: N802
        netlab.require_root()
        netlab.require_tools("bird", "birdc", "haproxy", "ss")
        netlab.bfdctl_bin()
        binary = netlab.beacon_bin()
        assert binary is not None
        st = os.stat(binary)
        netlab.log(f"bfd-beacon: {binary}, mtime "
                   f"{datetime.datetime.fromtimestamp(st.st_mtime).isoformat(timespec='seconds')}")
        cls.lab = netlab.Lab("reload")
        try:
            t0 = netlab.now()
            cls.hl = healthlab.HealthLab(cls.lab, interval_ms=INTERVAL_MS, mult=MULT, health=True)
            lb1 = cls.hl.lb1
            # the running master-worker HAProxy, under a handle that can also reload and
            # switch to daemon mode (same files: the config is rewritten identically)
            haproxy = ReloadableHaproxy(lb1.ns, healthlab.BACKEND_PORTS["lb1"])
            haproxy.started_at = t0
            lb1.haproxy = haproxy
            # lb1's beacon again, with all three HAProxy check types and debug logging
            assert lb1.beacon is not None
            lb1.beacon.stop()
            cfg = with_haproxy_checks(lb1, lb1.config(INTERVAL_MS, MULT, True))
            lb1.beacon = netlab.Beacon.start(lb1.ns, cfg, name="beacon-reload")
            cls.hl.wait_hops(cls.hl.both, timeout=20)
            cls.history = RouteHistory(cls.hl.router, healthlab.VIP_PREFIX)
            cls.log1 = BeaconLog(lb1.beacon.log_path)
            netlab.log(f"lab up (BFD {INTERVAL_MS} ms x {MULT}), both next hops installed, after "
                       f"{netlab.now() - t0:.1f} s")
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:  # noqa: N802
        cls.lab.close()

    def setUp(self) -> None:  # noqa: N802
        self.t_test = netlab.now()
        try:
            self.wait_lb1_healthy("start of " + self.id(), timeout=5)
        except HarnessError as e:
            # a failed earlier test may have left lb1 out (e.g. a check stuck failing): a fresh
            # HAProxy start (new pid in the pidfile) is the operator's remedy; then it must work
            netlab.log(f"lb1 not healthy at the start of {self.id()} ({e}); restarting its HAProxy")
            self.haproxy.stop()
            self.reap_all_haproxy()
            self.haproxy.start()
            try:
                self.wait_lb1_healthy("start of " + self.id() + " after an HAProxy restart")
            except HarnessError as e2:
                raise HarnessError(f"{e2}\n{self.hl.dump()}") from None

    def tearDown(self) -> None:  # noqa: N802
        if netlab.testcase_failed(self):
            hp = self.haproxy
            netlab.log(f"--- diagnostics:\n{netlab.safe_call(self.hl.dump)}")
            netlab.log(f"--- lb1 HAProxy ({'master-worker' if hp.master_worker else 'daemon'} mode): "
                       f"pidfile {hp.read_pid()}, haproxy processes {haproxy_pids(self.lb1.ns)}; "
                       f"log tail:\n{netlab.read_tail(hp.log_path, 15)}")
            netlab.log("--- VIP route events during this test:\n  " +
                       "\n  ".join(self.history.lines(self.t_test, netlab.now() + 1)[-60:]))
            netlab.log(f"--- BIRD log tail:\n{netlab.read_tail(self.hl.bird.log_path, 20)}")

    # ------------------------------------------------------------------ helpers

    @property
    def haproxy(self) -> ReloadableHaproxy:
        hp = self.hl.lb1.haproxy
        assert isinstance(hp, ReloadableHaproxy)
        return hp

    def session(self, lb: healthlab.Lb) -> dict[str, Any]:
        s = lb.session()
        if s is None:
            raise HarnessError(f"{lb.name}: no BFD session to the router in bfdctl sessions")
        return s

    def lb1_healthy(self) -> bool:
        if self.hl.nexthops() != self.hl.both:
            return False
        s = self.session(self.lb1)
        return s["state"] == "Up" and s["hold"] == "none" and self.session(self.lb2)["state"] == "Up"

    def wait_lb1_healthy(self, what: str, timeout: float = RECOVER_S, product: bool = False) -> float:
        """Wait until both next hops are installed and both sessions are Up, unheld. Returns
        the time it took. A timeout is a harness error (the lab is not where the scenario
        needs it) unless `product`: after a reload the beacon itself must recover."""
        t0 = netlab.now()
        try:
            netlab.wait_until(self.lb1_healthy, timeout, interval=0.02,
                              what=f"lb1 healthy and in the route ({what})")
        except TimeoutError as e:
            s = netlab.safe_call(lambda: self.session(self.lb1))
            hp = self.haproxy
            msg = (f"{e}: next hops {sorted(self.hl.nexthops())}, lb1 session "
                   f"{s.get('state') if isinstance(s, dict) else s} hold "
                   f"{s.get('hold_reason') if isinstance(s, dict) else ''}; meanwhile HAProxy: "
                   f"pidfile {hp.read_pid()}, alive haproxy processes {haproxy_pids(self.lb1.ns)}")
            if product:
                self.fail(f"PRODUCT: {msg}")
            raise HarnessError(f"HARNESS: {msg}") from None
        return netlab.now() - t0

    def use_mode(self, master_worker: bool) -> None:
        """lb1's HAProxy in the wanted mode, running, lb1 healthy in the route."""
        hp = self.haproxy
        if hp.master_worker != master_worker or hp.master_pid() is None:
            mode = "master-worker" if master_worker else "daemon"
            hp.stop()
            self.reap_all_haproxy()
            hp.set_master_worker(master_worker)
            hp.start()
            took = self.wait_lb1_healthy(f"lb1 HAProxy restarted in {mode} mode")
            netlab.log(f"lb1 HAProxy now in {mode} mode (pid {hp.read_pid()}); lb1 back in the "
                       f"route after {took:.1f} s")
        self.assert_only_current_haproxy()

    def reap_all_haproxy(self) -> None:
        """Kill whatever HAProxy process is left in lb1's namespace (orphans of a killed master,
        a stopped instance finishing): only our own lab's processes, by pid."""
        left = haproxy_pids(self.lb1.ns)
        if left:
            self.haproxy.reap_leftovers(left, timeout=0.5)
        if haproxy_pids(self.lb1.ns):
            raise HarnessError(f"HARNESS: HAProxy processes {haproxy_pids(self.lb1.ns)} in lb1 "
                               "survive SIGKILL")

    def assert_only_current_haproxy(self) -> None:
        hp = self.haproxy
        pid = hp.master_pid()
        want = {pid, *hp.serving_pids()} if pid else set()
        have = set(haproxy_pids(self.lb1.ns))
        if have != want:
            raise HarnessError(f"HARNESS: lb1 runs HAProxy processes {sorted(have)}, expected "
                               f"{sorted(want)} (pidfile {hp.read_pid()})")

    def counters(self) -> tuple[int, int]:
        return (int(self.session(self.lb1)["counters"]["down_count"]),
                int(self.session(self.lb2)["counters"]["down_count"]))

    def start_haproxy(self) -> float:
        """Start lb1's HAProxy (it must be stopped); returns when the start command returned."""
        self.reap_all_haproxy()
        self.haproxy.start()
        assert self.haproxy.started_at is not None
        return self.haproxy.started_at

    def reload_haproxy(self, what: str, hard: bool = False) -> tuple[float, list[int], list[int]]:
        try:
            return self.haproxy.reload(timeout=10, hard=hard)
        except HarnessError as e:
            raise HarnessError(f"{e}\n(during {what})") from None

    # ------------------------------------------------------------------ reload scenarios

    def run_reloads(self, mode: str, master_worker: bool, count: int, hard: bool = False) -> None:
        self.use_mode(master_worker)
        budget = netlab.now() + 60 + count * (PAUSE_S + 3)
        records: list[ReloadRecord] = []
        downs_before = self.counters()
        stuck = ""
        for i in range(1, count + 1):
            if netlab.now() > budget:
                raise HarnessError(f"HARNESS: {mode}: reload loop exceeded its time budget after "
                                   f"{i - 1} reloads")
            # every reload starts from a healthy lab; after a withdrawal the beacon must recover
            # (a product property: HAProxy is fine, only the beacon can keep lb1 out)
            if records:
                try:
                    self.wait_lb1_healthy(f"before {mode} reload #{i}", product=True)
                except AssertionError as e:
                    stuck = f"after reload #{i - 1} lb1 never came back: {e}"
                finally:
                    records[-1].t_end = netlab.now()
                    self.collect(records[-1])
                if stuck:
                    break
            else:
                self.wait_lb1_healthy(f"before {mode} reload #{i}")
            down1, down2 = self.counters()
            self.assert_only_current_haproxy()
            t0 = netlab.now()
            t_cmd, old, new = self.reload_haproxy(f"{mode} reload #{i}", hard=hard)
            records.append(ReloadRecord(i, t0, t_cmd, netlab.now(), old, new,
                                        downs_before=(down1, down2)))
            time.sleep(PAUSE_S)
        if not stuck:
            time.sleep(SETTLE_S)
            records[-1].t_end = netlab.now()
            self.collect(records[-1])
        self.report_reloads(mode, records, downs_before, stuck)

    def collect(self, rec: ReloadRecord) -> None:
        """Fill in what happened in [rec.t0, rec.t_end): route events, counters, log lines."""
        l1, l2 = self.lb1.addr, self.lb2.addr
        for t, hops, _ in self.history.between(rec.t0, rec.t_end):
            if l1 not in hops:
                rec.lb1_gone.append(ms(rec.t0, t))
            if l2 not in hops:
                rec.lb2_gone.append(ms(rec.t0, t))
        d1, d2 = self.counters()
        rec.lb1_downs = d1 - rec.downs_before[0]
        rec.lb2_downs = d2 - rec.downs_before[1]
        for t, text in self.log1.between(rec.t0, rec.t_end, r"^check \S+: pass -> fail"):
            rec.check_fails.append(f"+{ms(rec.t0, t):.0f} ms {text}")
        for _t, text in self.log1.between(rec.t0, rec.t_end, r"^check \S+: fail \(.*\) while pass"):
            m = re.match(r"^check (\S+): fail \((.*)\) while pass", text)
            if m:
                reason = re.sub(r"\b[0-9]{4,}\b", "N", m.group(2))   # pids, ports
                key = f"{m.group(1)}: {reason}"
                rec.poll_fails[key] = rec.poll_fails.get(key, 0) + 1
        for t, text in self.log1.between(rec.t0, rec.t_end, rf"^peer {re.escape(ROUTER)} group web: "):
            rec.session_lines.append(f"+{ms(rec.t0, t):.0f} ms {text}")

    def report_reloads(self, mode: str, records: list[ReloadRecord],
                       downs_before: tuple[int, int], stuck: str = "") -> None:
        withdrawn = [r for r in records if r.lb1_gone]
        flapped = [r for r in records if r.lb1_downs > 0]
        control = [r for r in records if r.lb2_gone or r.lb2_downs > 0]
        downs_after = self.counters()
        by_check: dict[str, int] = {}
        polls: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for r in records:
            for line in r.check_fails:
                name = line.split()[3].rstrip(":")
                by_check[name] = by_check.get(name, 0) + 1
            for k, v in r.poll_fails.items():
                name = k.split(":")[0]
                polls[name] = polls.get(name, 0) + v
                reasons[k] = reasons.get(k, 0) + v
        cmd_ms = [ms(r.t0, r.t_cmd) for r in records]
        done_ms = [ms(r.t0, r.t_done) for r in records]
        figure(f"reload {mode}: {len(records)} reloads, {len(withdrawn)} withdrawals of lb1, "
               f"{len(flapped)} with lb1's session Up -> Down (down_count "
               f"{downs_before[0]} -> {downs_after[0]}); checks pass -> fail: {by_check or 'none'}; "
               f"single failed polls absorbed by fall: {polls or 'none'}; control lb2: "
               f"{len(control)} flaps (BFD {INTERVAL_MS} ms x {MULT})")
        figure(f"reload {mode}: command {pct(cmd_ms, 50):.0f}/{max(cmd_ms):.0f} ms, complete "
               f"{pct(done_ms, 50):.0f}/{max(done_ms):.0f} ms (p50/max)")
        for k, v in sorted(reasons.items()):
            netlab.log(f"  failed polls during {mode} reloads: {v} x {k}")
        details = []
        for r in (withdrawn or flapped)[:8]:
            details.append(f"  reload #{r.index} (pids {r.old} -> {r.new}, complete after "
                           f"{ms(r.t0, r.t_done):.0f} ms): lb1 out of the route at "
                           f"{[round(x, 1) for x in r.lb1_gone]} ms, session downs {r.lb1_downs}")
            details += [f"      {x}" for x in r.check_fails + r.session_lines][:8]
        env = ""
        if control:
            env = (f"\nENVIRONMENT: the control LB lb2 (never reloaded) flapped after reloads "
                   f"{[r.index for r in control]} too: BFD at {INTERVAL_MS} ms x {MULT} is not "
                   f"stable on this machine right now; try RELOAD_TEST_INTERVAL_MS=50.")
        if stuck:
            details.append(f"  STUCK {stuck}")
        if withdrawn or flapped or stuck:
            self.fail(f"PRODUCT: {len(withdrawn)} of {len(records)} {mode} HAProxy reloads withdrew "
                      f"lb1 from the router's ECMP route ({len(flapped)} took lb1's BFD session "
                      f"Down{'; the loop stopped early, lb1 did not recover' if stuck else ''}); "
                      f"HAProxy itself stayed up (each reload completed, new process "
                      f"listening before the old one left); checks that failed: {by_check}\n"
                      + "\n".join(details) + env)
        self.assertFalse(control, env.strip())

    def test_1_daemon_mode_reloads(self) -> None:
        self.run_reloads("daemon-mode", master_worker=False, count=RELOADS)

    def test_1b_daemon_mode_hard_reloads(self) -> None:
        if HARD_RELOADS <= 0:
            self.skipTest("RELOAD_TEST_HARD_RELOADS=0")
        self.run_reloads("daemon-mode hard (-st)", master_worker=False, count=HARD_RELOADS,
                         hard=True)

    def test_3_master_worker_reloads(self) -> None:
        self.run_reloads("master-worker", master_worker=True, count=RELOADS)

    # ------------------------------------------------------------------ kill scenarios

    def kill_now(self, kind: str, delay: float, t_ref: float, t_up: float) -> KillRecord:
        """SIGKILL lb1's HAProxy (master / pidfile process) at t_ref + delay (or at once if that
        has passed) and measure the beacon's and the router's reaction. t_up: since when the
        current HAProxy has run (its start or reload command)."""
        hp = self.haproxy
        pid = hp.master_pid()
        if pid is None:
            raise HarnessError(f"HARNESS: kill after {kind}: lb1's HAProxy is not running "
                               f"(pidfile {hp.read_pid()})")
        workers = healthlab.children_of(pid) if hp.master_worker else []
        left = t_ref + delay - netlab.now()
        if left > 0:
            time.sleep(left)
        t_kill = netlab.now()
        os.kill(pid, signal.SIGKILL)
        in_route = self.lb1.addr in self.history.hops_at(t_kill)
        # the check's state at the kill: its last transition logged before it (the log's
        # stamps are good to ~1 ms; the reaction to the kill comes 2 ms or more later)
        self.log1.poll()
        passing = False
        rx = re.compile(rf"^check {re.escape(PROC_CHECK)}: (?:\w+ -> (\w+)|first result (\w+))")
        for t, _lvl, text in self.log1.lines:
            m = rx.match(text)
            if m and t < t_kill - 0.002:
                passing = (m.group(1) or m.group(2)) == "pass"
        t_check = self.log1.wait_for(check_fail_pattern(PROC_CHECK), since=t_kill - 0.003,
                                     timeout=NOTICE_WAIT_S) if passing else None
        route_ms = None
        if in_route:
            try:
                t_route, _ = self.hl.routes.wait_for(lambda h: self.lb1.addr not in h,
                                                     since=t_kill, timeout=NOTICE_WAIT_S)
                route_ms = ms(t_kill, t_route)
            except TimeoutError:
                route_ms = None
        if workers:   # orphaned workers of a killed master exit within ms on their own
            hp.reap_leftovers(workers, timeout=1.0)
        self.reap_all_haproxy()
        # HAProxy stays dead a while: the check must stay failed and lb1 out of the route,
        # from the moment the beacon had noticed (a session coming Up in the few ms before is
        # a fair race) until the hold ends
        time.sleep(max(0.0, t_kill + DEAD_HOLD_S - netlab.now()))
        noticed = max(route_ms or 0.0, ms_or_zero(t_check, t_kill))
        t_after = t_kill + noticed / 1000 + 0.005
        back = any(self.lb1.addr in h for _, h, _ in self.history.between(t_after, netlab.now()))
        repass = [text for _t, text in self.log1.between(
            t_after, netlab.now(), rf"^check {re.escape(PROC_CHECK)}: \w+ -> pass")]
        return KillRecord(kind, delay, t_kill - t_ref, pid, in_route,
                          ms(t_kill, t_check) if t_check is not None else None, passing, route_ms,
                          back, repass[0] if repass else "")

    def run_kills(self, mode: str, master_worker: bool) -> None:
        self.use_mode(master_worker)
        hp = self.haproxy
        per_rep = 12.0   # two starts, one reload, two kills (+ holds) and a recovery: ~3-6 s
        budget = netlab.now() + 30 + (KILL_BASELINE + len(KILL_DELAYS) * KILL_REPS) * per_rep
        recs: list[KillRecord] = []

        def check_budget() -> None:
            if netlab.now() > budget:
                raise HarnessError(f"HARNESS: {mode} kill loop exceeded its time budget")

        def healthy_running(what: str) -> float:
            """HAProxy started, lb1 back in the route; returns the start command's time."""
            t = self.start_haproxy()
            self.wait_lb1_healthy(what, product=True)
            return t

        try:
            # baseline: HAProxy running for a while, lb1 in the route ("any other kill")
            t_up = hp.started_at if hp.started_at is not None else self.t_test
            for i in range(KILL_BASELINE):
                check_budget()
                if i:
                    t_up = healthy_running(f"{mode} restart after baseline kill {i}")
                recs.append(self.kill_now("steady", 1.2, t_up, t_up))
            for delay in KILL_DELAYS:
                for _rep in range(KILL_REPS):
                    check_budget()
                    # (a) kill `delay` after a fresh start (HAProxy is dead here)
                    t_start = self.start_haproxy()
                    recs.append(self.kill_now("start", delay, t_start, t_start))
                    # (b) kill `delay` after a seamless reload of a healthy HAProxy
                    t_up = healthy_running(f"{mode} before reload+kill")
                    t_cmd, _old, _new = self.reload_haproxy(f"{mode} reload before a kill")
                    recs.append(self.kill_now("reload", delay, t_cmd, t_up))
        finally:
            # leave lb1 as the next test expects it: HAProxy running, lb1 in the route
            if hp.master_pid() is None:
                netlab.safe_call(self.start_haproxy)
        self.report_kills(mode, recs)
        self.wait_lb1_healthy(f"{mode} after the kill scenario", product=True)

    def report_kills(self, mode: str, recs: list[KillRecord]) -> None:
        problems: list[str] = []
        harness: list[str] = []
        base = [r.check_ms for r in recs if r.kind == "steady" and r.check_ms is not None]
        base_max = max(base) if base else None
        limit = min(KILL_BOUND_MS, base_max + BASELINE_SLACK_MS) if base_max is not None else KILL_BOUND_MS
        groups: list[tuple[str, float, list[KillRecord]]] = [("steady (> 1 s up)", 0.0,
                                                            [r for r in recs if r.kind == "steady"])]
        for kind in ("start", "reload"):
            for d in KILL_DELAYS:
                groups.append((f"{kind} +{d * 1000:.0f} ms", d,
                               [r for r in recs if r.kind == kind and r.delay == d]))
        for label, d, rs in groups:
            if not rs:
                continue
            checks = [r.check_ms for r in rs if r.check_ms is not None]
            routes = [r.route_ms for r in rs if r.route_ms is not None]
            actual = [r.actual_delay * 1000 for r in rs]
            text = (f"kill {mode} after {label}: {len(rs)} kills (at +{min(actual):.0f}.."
                    f"{max(actual):.0f} ms); kill -> {PROC_CHECK} fail ")
            text += (f"p50 {pct(checks, 50):.1f} / max {max(checks):.1f} ms (n={len(checks)})"
                     if checks else "n/a")
            text += f"; lb1 in the route at the kill {sum(r.in_route for r in rs)}/{len(rs)}"
            if routes:
                text += f", kill -> route removed p50 {pct(routes, 50):.1f} / max {max(routes):.1f} ms"
            figure(text)
            for r in rs:
                what = f"kill after {r.kind} +{r.actual_delay * 1000:.0f} ms (pid {r.pid})"
                if not r.check_was_passing:
                    (harness if r.kind == "steady" else problems).append(
                        f"{what}: {PROC_CHECK} had not reported HAProxy running before the kill")
                elif r.check_ms is None:
                    problems.append(f"{what}: {PROC_CHECK} never went pass -> fail "
                                    f"(looked for {NOTICE_WAIT_S} s)")
                elif r.kind != "steady" and r.check_ms > limit:
                    problems.append(f"{what}: noticed after {r.check_ms:.1f} ms (limit {limit:.0f} ms"
                                    f" = min(bound {KILL_BOUND_MS:.0f}, baseline max "
                                    f"{base_max if base_max is not None else float('nan'):.1f} + "
                                    f"{BASELINE_SLACK_MS:.0f}))")
                elif r.kind == "steady" and r.check_ms > KILL_BOUND_MS:
                    problems.append(f"{what}: even a steady kill took {r.check_ms:.1f} ms "
                                    f"(bound {KILL_BOUND_MS:.0f} ms)")
                if r.in_route and r.route_ms is None:
                    problems.append(f"{what}: lb1 was in the route and was not removed within "
                                    f"{NOTICE_WAIT_S} s")
                elif r.route_ms is not None and r.route_ms > KILL_BOUND_MS:
                    problems.append(f"{what}: lb1 removed from the route only after "
                                    f"{r.route_ms:.1f} ms (bound {KILL_BOUND_MS:.0f} ms)")
                if r.readded_after_kill:
                    problems.append(f"{what}: lb1 came (back) into the route while HAProxy was dead")
                if r.repassed_after_kill:
                    problems.append(f"{what}: {PROC_CHECK} passed again while HAProxy was dead: "
                                    f"{r.repassed_after_kill}")
        if harness:
            raise HarnessError("HARNESS: " + "; ".join(harness))
        if problems:
            self.fail(f"PRODUCT: {len(problems)} problem(s) over {len(recs)} HAProxy kills "
                      f"({mode}): not withdrawn like any other kill:\n  " + "\n  ".join(problems))

    def test_2_daemon_mode_kill_after_restart(self) -> None:
        self.run_kills("daemon-mode", master_worker=False)

    def test_4_master_worker_kill_after_restart(self) -> None:
        self.run_kills("master-worker", master_worker=True)


if __name__ == "__main__":
    code = netlab.main(sys.argv[1:])
    netlab.print_figures()
    sys.exit(code)
