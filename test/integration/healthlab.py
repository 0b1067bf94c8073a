"""healthlab: the issue-3 health-beacon lab on top of netlab (stdlib only).

Topology (every namespace, address and process is created here and removed by Lab.close())::

    client ns                router ns (BIRD 2)                    lb1 ns / lb2 ns
    cl0 198.18.1.2/24 ---- rt-cl 198.18.1.1/24                     up0 198.18.10.11 / .12
                           br-lb 198.18.10.1/24 [rt-lb1, rt-lb2] - up0  (BFD with the router)
                           static 198.19.99.99/32                  lo: VIP 198.19.99.99/32
                             via 198.18.10.11 bfd                  HAProxy (master-worker, -D)
                             via 198.18.10.12 bfd                  bfd-beacon
                           (ECMP, fib_multipath_hash_policy=1)     be0 198.18.20.11 / .12
                                                                      |
                                            backend ns: br-be 198.18.20.2/24 [be-lb1, be-lb2]
                                            web server for lb1 on :8081, for lb2 on :8082

Data path: client -> router -> (ECMP per flow) lb1|lb2 (HAProxy frontend bound on the VIP,
which sits on lo with arp_ignore=1/arp_announce=2) -> backend server. HAProxy proxies, so
the backend answers the LB (directly connected on br-be) and the LB answers the client
through its default route via the router. rp_filter=0 everywhere, ip_forward=1 on router.

Each LB has its *own* backend server process (same backend namespace, port 8081 for lb1 and
8082 for lb2), so "the backend fails" can be made to hit lb1 alone: stopping lb1's server
makes lb1's HAProxy server check fail (`check inter 100 fall 2 rise 2`), `nbsrv(web)` drops
to 0, `monitor fail` answers 503 on the monitor-uri, and lb1's beacon withdraws via its
haproxy-http check while lb2 keeps serving.

The "uplink" watched by the interface check is be0 (the link to the backend), not up0:
setting up0 down would also cut BFD itself, so its effect would be the silent-peer timeout
rather than the beacon's signal.

Helpers:
    HealthLab(lab, interval_ms=..., health=True)   builds everything above; .lb1/.lb2 are LB
    Haproxy                                        one HAProxy master-worker instance
    BackendServer                                  python3 -m http.server in the backend ns
    ClientLoop                                     bounded HTTP loop from the client ns
    control_request(sock, obj)                     raw newline-delimited JSON on the control
                                                   socket (for commands bfdctl lacks)
    percentile(values, p)
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402

VIP = "198.19.99.99"
VIP_PREFIX = VIP + "/32"
ROUTER_LB_ADDR = "198.18.10.1"
ROUTER_CLIENT_ADDR = "198.18.1.1"
CLIENT_ADDR = "198.18.1.2"
BACKEND_ADDR = "198.18.20.2"
LB_ADDRS = {"lb1": "198.18.10.11", "lb2": "198.18.10.12"}
LB_BACKEND_ADDRS = {"lb1": "198.18.20.11", "lb2": "198.18.20.12"}
BACKEND_PORTS = {"lb1": 8081, "lb2": 8082}
MONITOR_URL = "http://127.0.0.1:8405/beacon-health"
UPLINK = "up0"       # BFD / data link to the router
CHECKED_IF = "be0"   # interface watched by the `interface` check (link to the backend)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    if not s:
        raise ValueError("percentile of an empty list")
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def control_request(sock_path: str, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    """Send one JSON request line on the daemon's UNIX control socket and return the parsed
    response line, or None if no complete response came within `timeout`."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    deadline = netlab.now() + timeout
    try:
        s.connect(sock_path)
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            left = deadline - netlab.now()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                break
            buf += chunk
        line = buf.split(b"\n", 1)[0]
        return json.loads(line) if line.strip() else None
    finally:
        s.close()


# --------------------------------------------------------------------------- processes

def children_of(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (scans /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def kill_pid(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class BackendServer:
    """`python3 -m http.server PORT --bind ADDR` serving a small index.html, in `ns`."""

    def __init__(self, ns: netlab.Netns, addr: str, port: int):
        self.ns, self.addr, self.port = ns, addr, port
        self.root = os.path.join(ns.dir, f"www{port}")
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "index.html"), "w") as f:
            f.write(f"backend {port}\n")
        self.log_path = os.path.join(ns.dir, f"www{port}.log")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> None:
        self.proc = self.ns.popen([sys.executable, "-m", "http.server", str(self.port), "--bind",
                                   self.addr, "--directory", self.root], log_path=self.log_path)
        netlab.wait_until(self._listening, timeout, what=f"backend server {self.addr}:{self.port}")

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"backend server exited: {netlab.read_tail(self.log_path)}")
        out = self.ns.run(["ss", "-Hltn", f"sport = :{self.port}"], check=False).stdout
        return bool(out.strip())

    def stop(self) -> None:
        if self.proc is not None:
            netlab.stop_process(self.proc, timeout=2.0)
            self.proc = None


HAPROXY_CFG = """\
global
    master-worker
    stats socket {sock} level admin
    pidfile {pidfile}

defaults
    mode http
    timeout connect 500ms
    timeout client 5s
    timeout server 5s

frontend vip
    bind {vip}:80
    default_backend web

frontend health
    bind 127.0.0.1:8405
    monitor-uri /beacon-health
    monitor fail if {{ nbsrv(web) lt 1 }}

backend web
    server s1 {backend}:{port} check inter 100 fall 2 rise 2
"""


class Haproxy:
    """Real HAProxy in master-worker mode, daemonised (`haproxy -W -D -p PIDFILE -f CFG`), so
    the pidfile holds the master's pid (what the haproxy-process check watches) and the
    master is reaped by init, like in production, not by the test."""

    def __init__(self, ns: netlab.Netns, backend_port: int):
        self.ns = ns
        self.cfg = os.path.join(ns.dir, "haproxy.cfg")
        self.pidfile = os.path.join(ns.dir, "haproxy.pid")
        self.sock = os.path.join(ns.dir, "admin.sock")
        self.log_path = os.path.join(ns.dir, "haproxy.log")
        with open(self.cfg, "w") as f:
            f.write(HAPROXY_CFG.format(sock=self.sock, pidfile=self.pidfile, vip=VIP,
                                       backend=BACKEND_ADDR, port=backend_port))

    def start(self, timeout: float = 10) -> int:
        """Start, wait for the new master pid in the pidfile and for the monitor frontend to
        listen. Returns the master pid."""
        old = self.read_pid()
        chk = subprocess.run(["haproxy", "-c", "-q", "-f", self.cfg], capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError(f"bad HAProxy config {self.cfg}: {chk.stdout}{chk.stderr}")
        p = self.ns.popen(["haproxy", "-W", "-D", "-p", self.pidfile, "-f", self.cfg],
                          log_path=self.log_path)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError("haproxy -D did not daemonise") from None
        if p.returncode != 0:
            raise RuntimeError(f"haproxy failed ({p.returncode}): {netlab.read_tail(self.log_path)}")

        def ready() -> bool:
            pid = self.read_pid()
            if pid is None or pid == old or not netlab.pid_alive(pid):
                return False
            if not children_of(pid):
                return False
            out = self.ns.run(["ss", "-Hltn", "sport = :8405"], check=False).stdout
            return bool(out.strip())

        netlab.wait_until(ready, timeout, interval=0.02, what=f"HAProxy in {self.ns.name}")
        pid = self.read_pid()
        assert pid is not None
        return pid

    def read_pid(self) -> int | None:
        try:
            with open(self.pidfile) as f:
                text = f.read().strip()
            return int(text.split()[0]) if text else None
        except (OSError, ValueError):
            return None

    def master_pid(self) -> int | None:
        pid = self.read_pid()
        return pid if pid is not None and netlab.pid_alive(pid) else None

    def workers(self) -> list[int]:
        pid = self.master_pid()
        return children_of(pid) if pid else []

    def kill_master(self) -> tuple[int, list[int]]:
        """SIGKILL the master; returns (master pid, worker pids seen just before)."""
        pid = self.master_pid()
        if pid is None:
            raise RuntimeError(f"HAProxy in {self.ns.name} is not running")
        workers = children_of(pid)
        os.kill(pid, signal.SIGKILL)
        return pid, workers

    def reap_leftovers(self, pids: list[int], timeout: float = 3.0) -> None:
        """After a master crash: wait briefly for orphaned workers, then SIGKILL them."""
        deadline = netlab.now() + timeout
        while netlab.now() < deadline and any(netlab.pid_alive(p) for p in pids):
            time.sleep(0.02)
        for p in pids:
            if netlab.pid_alive(p):
                kill_pid(p)
        for p in pids:
            netlab.wait_pid_gone(p, 3.0)

    def stop(self) -> None:
        pid = self.master_pid()
        if pid is None:
            return
        workers = children_of(pid)
        kill_pid(pid, signal.SIGTERM)
        netlab.wait_pid_gone(pid, 3.0)
        self.reap_leftovers(workers + ([pid] if netlab.pid_alive(pid) else []), timeout=1.0)

    def runtime(self, command: str, timeout: float = 3.0) -> str:
        """One Runtime API command on the admin socket; returns the answer text."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
            s.sendall((command + "\n").encode())
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            return out.decode(errors="replace")
        finally:
            s.close()


# --------------------------------------------------------------------------- client loop

def _client_main(vip: str, port: int, seconds: float, max_requests: int, interval_ms: float,
                 threads: int) -> None:
    """Child side of ClientLoop (runs inside the client namespace). One line per request:
    "R <monotonic start> <monotonic end> <1|0> <detail>"; a final "DONE n" line."""
    lock = threading.Lock()
    count = [0]
    start = time.monotonic()
    deadline = start + seconds
    period = interval_ms / 1000.0 * threads

    def one() -> tuple[bool, str]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect((vip, port))   # new connection = new source port = new ECMP hash
            s.sendall(f"GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if len(data) > 65536:
                    break
            status = data.split(b"\r\n", 1)[0].decode(errors="replace")
            if status.startswith("HTTP/1.") and status.split()[1:2] == ["200"]:
                return True, "200"
            return False, status.replace(" ", "_") or "empty"
        except OSError as e:
            return False, type(e).__name__
        finally:
            s.close()

    def worker(i: int) -> None:
        nxt = start + i * interval_ms / 1000.0
        while True:
            t = time.monotonic()
            if t >= deadline:
                return
            if t < nxt:
                time.sleep(min(nxt - t, deadline - t))
                continue
            nxt += period
            if nxt < t:          # a slow request: skip missed slots instead of piling up
                nxt = t + period
            with lock:
                if count[0] >= max_requests:
                    return
                count[0] += 1
            t0 = time.monotonic()
            ok, detail = one()
            t1 = time.monotonic()
            with lock:
                print(f"R {t0:.6f} {t1:.6f} {1 if ok else 0} {detail}", flush=True)

    print("READY", flush=True)
    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 5)
    print(f"DONE {count[0]}", flush=True)


class ClientLoop:
    """Bounded HTTP request loop to the VIP from the client namespace: a new TCP connection
    every `interval_ms` (spread over `threads` threads), for at most `seconds` and
    `max_requests`. Results are stamped with the (system-wide) monotonic clock, so they can
    be matched against netlab.now() timestamps:

        loop = ClientLoop(client_ns, seconds=120)
        ok, failed, details = loop.window(t0, t1)
    """

    def __init__(self, ns: netlab.Netns, seconds: float = 120, max_requests: int = 20000,
                 interval_ms: float = 10, threads: int = 4, vip: str = VIP, port: int = 80):
        self.results: list[tuple[float, float, bool, str]] = []
        self.done = threading.Event()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, os.path.abspath(__file__), "client",
             vip, str(port), str(seconds), str(max_requests), str(interval_ms), str(threads)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            text=True, bufsize=1)
        ns.lab.processes.append(self.proc)
        threading.Thread(target=self._reader, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError("client loop did not start within 30 s")

    def _reader(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("READY"):
                self.ready.set()
                continue
            parts = line.split()
            if len(parts) >= 5 and parts[0] == "R":
                with self.lock:
                    self.results.append((float(parts[1]), float(parts[2]), parts[3] == "1",
                                         parts[4]))
        self.ready.set()
        self.done.set()

    def window(self, t0: float, t1: float | None = None) -> tuple[int, int, dict[str, int]]:
        """(successes, failures, failure details -> count) of requests started in [t0, t1]."""
        t1 = netlab.now() if t1 is None else t1
        ok = bad = 0
        details: dict[str, int] = {}
        with self.lock:
            for s, _e, good, detail in self.results:
                if t0 <= s <= t1:
                    if good:
                        ok += 1
                    else:
                        bad += 1
                        details[detail] = details.get(detail, 0) + 1
        return ok, bad, details

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        netlab.stop_process(self.proc, timeout=2.0)


# --------------------------------------------------------------------------- the lab

class Lb:
    """One load balancer namespace with its HAProxy, backend server and beacon."""

    def __init__(self, name: str, ns: netlab.Netns, haproxy: Haproxy, backend: BackendServer):
        self.name, self.ns, self.haproxy, self.backend = name, ns, haproxy, backend
        self.addr = LB_ADDRS[name]
        self.maintenance = os.path.join(ns.dir, "maintenance")
        self.beacon: netlab.Beacon | None = None

    def config(self, interval_ms: int, mult: int, health: bool,
               failsafe_timeout: str = "500ms") -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "daemon": {"shutdown_signal": "down"},
            "bfd": {"desired_min_tx": f"{interval_ms}ms", "required_min_rx": f"{interval_ms}ms",
                    "detect_multiplier": mult},
            "session": [{"peer": ROUTER_LB_ADDR, "local": self.addr, "interface": UPLINK,
                         "group": "web"}],
        }
        if health:
            cfg["health"] = {"failsafe_timeout": failsafe_timeout}
            cfg["check"] = [
                {"name": "haproxy", "type": "haproxy-http", "url": MONITOR_URL,
                 "expect_status": 200, "interval": "100ms", "timeout": "80ms", "rise": 3,
                 "fall": 2},
                {"name": "haproxy-proc", "type": "haproxy-process", "pidfile": self.haproxy.pidfile},
                {"name": "uplink", "type": "interface", "interface": CHECKED_IF},
                {"name": "maint", "type": "file", "path": self.maintenance},
            ]
            cfg["group"] = [{"name": "web", "checks": ["haproxy", "haproxy-proc", "uplink", "maint"],
                             "unhealthy_signal": "down", "maintenance_signal": "down", "diag": 5}]
        return cfg

    def session(self) -> dict[str, Any] | None:
        assert self.beacon is not None
        return self.beacon.session(ROUTER_LB_ADDR)

    def set_maintenance(self, on: bool) -> None:
        """Create (on) or delete (off) the marker watched by the `file` check (idempotent)."""
        if on:
            with open(self.maintenance, "w") as f:
                f.write("maintenance (healthlab)\n")
        else:
            try:
                os.unlink(self.maintenance)
            except FileNotFoundError:
                pass

    def set_checked_if(self, up: bool, check: bool = True) -> None:
        """Set the interface watched by the `interface` check (CHECKED_IF) up or down."""
        self.ns.ip("link", "set", CHECKED_IF, "up" if up else "down", check=check)


class LabTestMixin:
    """For unittest cases holding a HealthLab in `self.hl`: lb1/lb2 shortcuts."""

    hl: "HealthLab"

    @property
    def lb1(self) -> Lb:
        return self.hl.lb1

    @property
    def lb2(self) -> Lb:
        return self.hl.lb2


class HealthLab:
    """Builds the whole lab inside `lab` (a netlab.Lab). health=False starts the beacons
    without [[check]]/[[group]] (manual holds only, to validate the topology)."""

    def __init__(self, lab: netlab.Lab, interval_ms: int = 100, mult: int = 3, health: bool = True,
                 failsafe_timeout: str = "500ms", client_seconds: float = 0):
        self.lab, self.interval_ms, self.mult = lab, interval_ms, mult
        self.health, self.failsafe_timeout = health, failsafe_timeout
        netlab.require_tools("bird", "birdc", "haproxy", "ss")
        self.client = lab.netns("client")
        self.router = lab.netns("router")
        self.backend_ns = lab.netns("backend")
        lbs = {n: lab.netns(n) for n in ("lb1", "lb2")}
        # links
        lab.veth(self.client, "cl0", self.router, "rt-cl")
        lab.bridge(self.router, "br-lb")
        lab.bridge(self.backend_ns, "br-be")
        for n, ns in lbs.items():
            lab.veth(ns, UPLINK, self.router, f"rt-{n}")
            self.router.ip("link", "set", f"rt-{n}", "master", "br-lb")
            lab.veth(ns, CHECKED_IF, self.backend_ns, f"be-{n}")
            self.backend_ns.ip("link", "set", f"be-{n}", "master", "br-be")
        # addresses, routes, sysctls
        self.client.addr("cl0", CLIENT_ADDR + "/24")
        self.client.route("add", "default", "via", ROUTER_CLIENT_ADDR)
        self.router.addr("rt-cl", ROUTER_CLIENT_ADDR + "/24")
        self.router.addr("br-lb", ROUTER_LB_ADDR + "/24")
        self.backend_ns.addr("br-be", BACKEND_ADDR + "/24")
        for ns in (self.client, self.router, self.backend_ns, *lbs.values()):
            for scope in ("all", "default"):
                ns.sysctl(f"net.ipv4.conf.{scope}.rp_filter", 0)
        self.router.sysctl("net.ipv4.ip_forward", 1)
        self.router.sysctl("net.ipv4.fib_multipath_hash_policy", 1)
        self.lbs: dict[str, Lb] = {}
        for n, ns in lbs.items():
            ns.addr(UPLINK, LB_ADDRS[n] + "/24")
            ns.addr(CHECKED_IF, LB_BACKEND_ADDRS[n] + "/24")
            ns.addr("lo", VIP_PREFIX)
            ns.route("add", "default", "via", ROUTER_LB_ADDR)
            for scope in ("all", UPLINK):
                ns.sysctl(f"net.ipv4.conf.{scope}.arp_ignore", 1)
                ns.sysctl(f"net.ipv4.conf.{scope}.arp_announce", 2)
            backend = BackendServer(self.backend_ns, BACKEND_ADDR, BACKEND_PORTS[n])
            self.lbs[n] = Lb(n, ns, Haproxy(ns, BACKEND_PORTS[n]), backend)
        self.lb1, self.lb2 = self.lbs["lb1"], self.lbs["lb2"]
        # daemons: backends, HAProxy, BIRD, beacons
        for lb in self.lbs.values():
            lb.backend.start()
        for lb in self.lbs.values():
            lb.haproxy.start()
        conf = netlab.bird_router_config([(VIP_PREFIX, [LB_ADDRS["lb1"], LB_ADDRS["lb2"]])],
                                         interface="br-lb", min_rx_ms=interval_ms,
                                         min_tx_ms=interval_ms, multiplier=mult)
        self.bird = netlab.Bird.start(self.router, conf)
        self.routes = netlab.RouteWatcher(self.router, VIP_PREFIX)
        for lb in self.lbs.values():
            lb.beacon = netlab.Beacon.start(lb.ns, lb.config(interval_ms, mult, health,
                                                             failsafe_timeout))
        self.both = frozenset(LB_ADDRS.values())
        self.wait_hops(self.both, timeout=20)

    def nexthops(self) -> frozenset[str]:
        return self.routes.nexthops()

    def wait_hops(self, want: frozenset[str], timeout: float) -> None:
        netlab.wait_until(lambda: self.nexthops() == want, timeout, interval=0.02,
                          what=f"VIP next hops {sorted(want)} (now {sorted(self.nexthops())})")

    def measure(self, action: Callable[[], Any], predicate: Callable[[frozenset[str]], bool],
                timeout: float) -> tuple[float, float, frozenset[str]]:
        """Run action() stamped with t0 just before it; wait for the route event after which
        predicate(nexthops) holds. Returns (t0, t_route, nexthops)."""
        t0 = netlab.now()
        action()
        t, hops = self.routes.wait_for(predicate, since=t0, timeout=timeout)
        return t0, t, hops

    def kill_haproxy(self, lb: Lb, timeout: float = 10) -> tuple[float, float, list[int]]:
        """SIGKILL lb's HAProxy master; wait until its next hop is gone. Returns
        (t_kill, t_route, orphaned worker pids)."""
        pid = lb.haproxy.master_pid()
        if pid is None:
            raise RuntimeError(f"HAProxy in {lb.ns.name} is not running")
        workers = children_of(pid)   # scanned before t0: only the kill itself is timed
        t0, t, _ = self.measure(lambda: os.kill(pid, signal.SIGKILL), lambda h: lb.addr not in h,
                                timeout)
        return t0, t, workers

    def dump(self) -> str:
        """Diagnostics for a failed test."""
        parts = [f"route: {sorted(self.nexthops())}"]
        try:
            parts.append("BIRD:\n" + self.bird.birdc("show", "bfd", "sessions"))
        except Exception as e:  # noqa: BLE001
            parts.append(f"BIRD: <{e}>")
        for lb in self.lbs.values():
            if lb.beacon is not None:
                try:
                    parts.append(f"{lb.name} sessions: {json.dumps(lb.beacon.sessions())}")
                except Exception as e:  # noqa: BLE001
                    parts.append(f"{lb.name} sessions: <{e}>")
                parts.append(f"{lb.name} beacon log tail:\n{netlab.read_tail(lb.beacon.log_path, 40)}")
        return "\n".join(parts)


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "client":
        _client_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),
                     float(sys.argv[6]), int(sys.argv[7]))
    else:
        print("usage: healthlab.py client VIP PORT SECONDS MAX_REQUESTS INTERVAL_MS THREADS "
              "(internal)", file=sys.stderr)
        sys.exit(2)
