"""netlab: a small, stdlib-only harness for network-namespace integration tests.

Every test (and deploy/lab/run-lab) builds its own little network out of Linux network
namespaces, starts real daemons (BIRD, FRR, HAProxy, bfd-beacon) inside them, and removes
everything again, also after a crash. Only addresses inside those namespaces are used.

Quick tour::

    import netlab

    netlab.require_root()                     # skip (manual run) or fail (ctest) if not root
    with netlab.Lab("bird") as lab:           # registry: everything below is torn down on exit
        router = lab.netns("router")          # -> Netns named "bfdlab-<pid>-<n>-router"
        lb = lab.netns("lb")
        lab.veth(router, "rt0", lb, "lb0")    # veth pair created directly inside the two netns
        router.addr("rt0", "198.18.10.1/24")
        router.addr("rt0", "fd00:10::1/64")   # IPv6 addresses get `nodad` automatically
        lb.addr("lb0", "198.18.10.11/24")
        bird = netlab.Bird.start(router, BIRD_CONF_TEXT)
        bird.wait_bfd_state("198.18.10.11", "Up", timeout=10)
        beacon = netlab.Beacon.start(lb, {"bfd": {...}, "session": [{...}]})
        beacon.bfdctl("sessions", "--json")   # -> parsed JSON
        watcher = netlab.RouteWatcher(router, "198.19.99.99/32")
        t0 = netlab.now()
        beacon.bfdctl("session", "set-state", "down", "--all", json_out=False)
        t1, hops = watcher.wait_for(lambda h: not h, since=t0, timeout=5)
        print(f"withdrawn after {(t1 - t0) * 1000:.1f} ms")

Naming and crash safety
    Every namespace is named ``bfdlab-<pid>-<n>-<name>`` where <pid> is the creating process.
    Work directories are ``/tmp/bfdlab-<pid>-*``. :func:`cleanup_stale` removes namespaces and
    work dirs whose creator pid is dead (killing the processes still inside those namespaces
    first). :class:`Lab` registers itself for cleanup at interpreter exit and on
    SIGINT/SIGTERM (see :func:`install_signal_handlers`, called by Lab automatically).

Processes
    :meth:`Netns.popen` backgrounds ``ip netns exec NS CMD`` itself (ip execs CMD, so the
    Popen pid *is* the daemon's pid). :func:`stop_process` sends SIGTERM, waits (zombie-aware,
    reaping children it owns), then SIGKILL. Deleting a namespace first kills whatever still
    runs inside it (``ip netns pids``), so daemons that fork cannot leak.

Binaries
    :func:`beacon_bin` / :func:`bfdctl_bin` read $BEACON_BIN / $BFDCTL_BIN (set by ctest),
    falling back to <source>/build/release, then the newest <source>/build/*/ copy.
    :func:`under_ctest` tells whether a missing prerequisite must fail (ctest) or may skip
    (manual run); :func:`require` implements that policy.
"""

from __future__ import annotations

import atexit
import glob
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Any, Callable, Iterable

PREFIX = "bfdlab-"
SOURCE_DIR = os.environ.get(
    "BEACON_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

_NS_RE = re.compile(r"^bfdlab-(\d+)-")


def now() -> float:
    """Monotonic clock in seconds (the clock every timestamp in this module uses)."""
    return time.monotonic()


def log(msg: str) -> None:
    """Print one line to stdout, flushed (ctest shows it with --output-on-failure / -V)."""
    print(msg, flush=True)


# --------------------------------------------------------------------------- prerequisites

class Missing(Exception):
    """A prerequisite (root, a binary, a package) is missing."""


def under_ctest() -> bool:
    """True when started by ctest (which sets BEACON_BIN): missing prerequisites are failures."""
    return "BEACON_BIN" in os.environ


def require(condition: bool, message: str) -> None:
    """Skip the current test (manual run) or fail it (under ctest) when condition is false."""
    if condition:
        return
    if under_ctest():
        raise Missing(message)
    raise unittest.SkipTest(message)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces)")


def require_tools(*names: str) -> None:
    """Require programs on PATH (or absolute paths), e.g. require_tools("bird", "birdc")."""
    for name in names:
        require(shutil.which(name) is not None, f"{name} not found (install its Debian package)")


def _find_build_binary(env: str, name: str) -> str | None:
    path = os.environ.get(env)
    if path:
        return path if os.access(path, os.X_OK) else None
    release = os.path.join(SOURCE_DIR, "build", "release", name)
    if os.access(release, os.X_OK):
        return release
    found = [p for p in glob.glob(os.path.join(SOURCE_DIR, "build", "*", name)) if os.access(p, os.X_OK)]
    if found:
        return max(found, key=os.path.getmtime)
    return None


def beacon_bin(required: bool = True) -> str | None:
    """Path of bfd-beacon ($BEACON_BIN or a build dir); require()s it unless required=False."""
    path = _find_build_binary("BEACON_BIN", "bfd-beacon")
    if required:
        require(path is not None, "bfd-beacon not built (set BEACON_BIN or build it)")
    return path


def bfdctl_bin(required: bool = True) -> str | None:
    """Path of bfdctl ($BFDCTL_BIN or a build dir); require()s it unless required=False."""
    path = _find_build_binary("BFDCTL_BIN", "bfdctl")
    if required:
        require(path is not None, "bfdctl not built (set BFDCTL_BIN or build it)")
    return path


# --------------------------------------------------------------------------- commands

def run(cmd: list[str], check: bool = True, timeout: float = 20, input: str | None = None,
        ns: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (optionally inside netns `ns`), capture text output, bounded in time.

    Raises RuntimeError with the command's output when check=True and it fails."""
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(full)}\n"
                           f"stdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}")
    return proc


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (kill -0 succeeds on zombies; /proc tells)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    # state is the first field after the parenthesised command name (which may hold spaces)
    state = stat[stat.rfind(")") + 2:][:1]
    return state not in ("Z", "X", "")


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def wait_pid_gone(pid: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Wait until pid is dead (or a zombie); reap it when it is our child. True if gone."""
    deadline = now() + timeout
    while True:
        if proc is not None:
            if proc.poll() is not None:
                return True
        else:
            _reap(pid)
        if not pid_alive(pid):
            return True
        if now() >= deadline:
            return False
        time.sleep(0.005)


def stop_process(target: subprocess.Popen | int, timeout: float = 3.0,
                 sig: int = signal.SIGTERM) -> int | None:
    """Stop a process: send `sig` (SIGTERM), wait up to timeout, then SIGKILL.

    Accepts a Popen or a pid. Returns the exit status when known (Popen), else None.
    Never signals a pid that is already gone."""
    proc = target if isinstance(target, subprocess.Popen) else None
    pid = proc.pid if proc else int(target)
    if proc is not None and proc.poll() is not None:
        return proc.returncode
    if not pid_alive(pid):
        _reap(pid)
        return proc.poll() if proc else None
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    if not wait_pid_gone(pid, timeout, proc):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_pid_gone(pid, 5.0, proc)
    if proc is not None:
        try:
            return proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None
    return None


# --------------------------------------------------------------------------- namespaces

def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(name: str) -> list[int]:
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def _kill_netns_processes(name: str, timeout: float = 2.0) -> None:
    """SIGTERM, then SIGKILL, every process inside netns `name` (only our own namespaces)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [p for p in netns_pids(name) if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = now() + timeout
        while now() < deadline and any(pid_alive(p) for p in pids):
            for p in pids:
                _reap(p)
            time.sleep(0.01)


def delete_netns(name: str) -> None:
    """Kill what runs inside netns `name`, then delete it. Refuses names without our prefix."""
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to delete a namespace we did not create: {name}")
    if name not in list_netns():
        return
    _kill_netns_processes(name)
    run(["ip", "netns", "del", name], check=False)


def cleanup_stale(verbose: bool = True) -> list[str]:
    """Remove leftovers of crashed runs: namespaces `bfdlab-<pid>-*` and work dirs
    `/tmp/bfdlab-<pid>-*` whose <pid> is no longer alive. Returns what was removed."""
    removed = []
    for name in list_netns():
        m = _NS_RE.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            delete_netns(name)
            removed.append(name)
    for path in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        m = _NS_RE.match(os.path.basename(path))
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if verbose and removed:
        log(f"netlab: removed stale leftovers: {' '.join(removed)}")
    return removed


class Netns:
    """One network namespace. Create it with Lab.netns(); all helpers run inside it."""

    def __init__(self, lab: "Lab", name: str, short: str):
        self.lab = lab
        self.name = name          # full name, e.g. bfdlab-1234-0-router
        self.short = short        # name given by the test, e.g. router
        self.dir = os.path.join(lab.dir, short)   # per-namespace work directory
        os.makedirs(self.dir, exist_ok=True)

    def __repr__(self) -> str:
        return f"Netns({self.name})"

    def run(self, cmd: list[str], check: bool = True, timeout: float = 20,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command inside this namespace (see module-level run())."""
        return run(cmd, check=check, timeout=timeout, input=input, ns=self.name)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`ip -n NS ARGS...`"""
        return run(["ip", "-n", self.name, *args], check=check)

    def popen(self, cmd: list[str], log_path: str | None = None, stdout: Any = None,
              stderr: Any = None, **kwargs: Any) -> subprocess.Popen:
        """Start `ip netns exec NS CMD` in the background; the Popen's pid is CMD's pid.

        log_path: stdout and stderr both go (appended) to that file. The process is
        registered with the Lab and stopped (SIGTERM, then SIGKILL) at teardown."""
        if log_path is not None:
            logf = open(log_path, "ab")
            stdout, stderr = logf, subprocess.STDOUT
        else:
            logf = None
            stdout = subprocess.DEVNULL if stdout is None else stdout
            stderr = subprocess.DEVNULL if stderr is None else stderr
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr, start_new_session=True, **kwargs)
        if logf is not None:
            logf.close()
        self.lab.processes.append(proc)
        return proc

    def link_up(self, ifname: str) -> None:
        self.ip("link", "set", ifname, "up")

    def addr(self, ifname: str, cidr: str) -> None:
        """Add an address; IPv6 addresses get `nodad` so they are usable at once."""
        extra = ["nodad"] if ":" in cidr else []
        self.ip("addr", "add", cidr, "dev", ifname, *extra)

    def sysctl(self, key: str, value: str | int) -> None:
        """Set a sysctl inside the namespace, e.g. sysctl("net.ipv4.ip_forward", 1)."""
        self.run(["sysctl", "-qw", f"{key}={value}"])

    def route(self, *args: str) -> None:
        """`ip -n NS route ARGS...` (use "-6" first for IPv6 where needed)."""
        self.ip("route", *args)

    def nexthops(self, prefix: str) -> frozenset[str]:
        """Gateways of the route to exactly `prefix` (empty set: no route).

        Multipath routes give one entry per next hop; a directly connected or
        blackhole route gives {"dev:<ifname>"} / {"<type>"}."""
        return route_nexthops(self.name, prefix)


def route_nexthops(ns: str, prefix: str) -> frozenset[str]:
    """See Netns.nexthops(). Uses `ip -j route show exact PREFIX` in netns `ns`."""
    net = ipaddress.ip_network(prefix, strict=False)
    fam = "-6" if net.version == 6 else "-4"
    out = run(["ip", "-n", ns, "-j", fam, "route", "show", "exact", str(net)], check=False).stdout
    try:
        routes = json.loads(out) if out.strip() else []
    except json.JSONDecodeError:
        return frozenset()
    hops: set[str] = set()
    for r in routes:
        if r.get("type") not in (None, "unicast"):
            hops.add(r["type"])
            continue
        if "nexthops" in r:
            for nh in r["nexthops"]:
                hops.add(nh.get("gateway") or f"dev:{nh.get('dev')}")
        elif "gateway" in r:
            hops.add(r["gateway"])
        elif "dev" in r:
            hops.add(f"dev:{r['dev']}")
    return frozenset(hops)


# --------------------------------------------------------------------------- the lab registry

_LABS: list["Lab"] = []
_HANDLERS_INSTALLED = False


def _cleanup_all() -> None:
    for lab in list(_LABS):
        lab.close()


def install_signal_handlers() -> None:
    """On SIGINT/SIGTERM/SIGHUP: tear down every open Lab, then exit 128+signal.

    Called by Lab(); safe to call more than once. Only the main thread can install them."""
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED or threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: Any) -> None:
        signal.signal(signum, signal.SIG_IGN)   # a second Ctrl-C must not interrupt cleanup
        _cleanup_all()
        os._exit(128 + signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)
    atexit.register(_cleanup_all)
    _HANDLERS_INSTALLED = True


class Lab:
    """A set of namespaces, processes and files that belong together; close() removes them.

    Use as a context manager or call close(); it also runs at exit and on SIGINT/SIGTERM.
    Creating a Lab first removes stale leftovers of crashed runs (cleanup_stale)."""

    _counter = 0

    def __init__(self, tag: str = "lab", keep_dir: bool = False):
        install_signal_handlers()
        cleanup_stale()
        self.tag = tag
        self.keep_dir = keep_dir
        self.dir = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{tag}-")
        os.chmod(self.dir, 0o755)
        self.namespaces: list[Netns] = []
        self.processes: list[subprocess.Popen] = []
        self.closers: list[Callable[[], None]] = []
        self.closed = False
        _LABS.append(self)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def netns(self, short: str) -> Netns:
        """Create namespace bfdlab-<pid>-<n>-<short> with lo up and return it."""
        Lab._counter += 1
        name = f"{PREFIX}{os.getpid()}-{Lab._counter}-{short}"
        run(["ip", "netns", "add", name])
        ns = Netns(self, name, short)
        self.namespaces.append(ns)
        ns.link_up("lo")
        return ns

    def veth(self, a: Netns, a_if: str, b: Netns, b_if: str, up: bool = True) -> None:
        """Create a veth pair with a_if inside a and b_if inside b (names <= 15 chars).

        Created directly inside the namespaces, so names never clash in the root netns."""
        run(["ip", "link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", b_if,
             "netns", b.name])
        if up:
            a.link_up(a_if)
            b.link_up(b_if)

    def bridge(self, ns: Netns, br: str, members: Iterable[str] = ()) -> None:
        """Create bridge `br` in ns (up) and enslave the given interfaces of ns to it."""
        ns.ip("link", "add", br, "type", "bridge")
        ns.link_up(br)
        for m in members:
            ns.ip("link", "set", m, "master", br)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Register a callback run (first, in reverse order) at close()."""
        self.closers.append(fn)

    def close(self) -> None:
        """Stop processes, delete namespaces (killing anything left inside), remove files."""
        if self.closed:
            return
        self.closed = True
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - teardown must go on
                log(f"netlab: close callback failed: {e}")
        for proc in reversed(self.processes):
            try:
                stop_process(proc, timeout=2.0)
            except Exception as e:  # noqa: BLE001
                log(f"netlab: stopping pid {proc.pid} failed: {e}")
        for ns in reversed(self.namespaces):
            try:
                delete_netns(ns.name)
            except Exception as e:  # noqa: BLE001
                log(f"netlab: deleting {ns.name} failed: {e}")
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _LABS:
            _LABS.remove(self)


# --------------------------------------------------------------------------- route changes

class RouteWatcher:
    """Timestamps changes of the route to one prefix inside a namespace.

    Runs `ip -n NS monitor route` in the background; a reader thread stamps every event
    that mentions the prefix with now() the moment it arrives (rtnetlink event, no polling).
    wait_for() then checks the route's state after each event.

        w = RouteWatcher(router, "198.19.99.99/32")
        t0 = now(); do_something()
        t, hops = w.wait_for(lambda hops: not hops, since=t0, timeout=5)
    """

    def __init__(self, ns: Netns, prefix: str):
        self.ns = ns
        self.net = ipaddress.ip_network(prefix, strict=False)
        self.key = str(self.net.network_address)
        fam = "-6" if self.net.version == 6 else "-4"
        self.proc = subprocess.Popen(["ip", "-n", ns.name, fam, "monitor", "route"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        ns.lab.processes.append(self.proc)
        self.events: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()
        time.sleep(0.05)   # let `ip monitor` subscribe before the caller acts

    def _reader(self) -> None:
        assert self.proc.stdout is not None
        pat = re.compile(r"(^|\s)" + re.escape(self.key) + r"(/\d+)?(\s|$)")
        for line in self.proc.stdout:
            t = now()
            if pat.search(line):
                with self.cond:
                    self.events.append((t, line.rstrip()))
                    self.cond.notify_all()

    def nexthops(self) -> frozenset[str]:
        return route_nexthops(self.ns.name, str(self.net))

    def wait_for(self, predicate: Callable[[frozenset[str]], bool], since: float,
                 timeout: float) -> tuple[float, frozenset[str]]:
        """Wait for a route event at or after `since` after which predicate(nexthops) holds.

        Returns (timestamp of that event, nexthops). Raises TimeoutError."""
        deadline = now() + timeout
        idx = 0
        while True:
            with self.cond:
                while True:
                    while idx < len(self.events) and self.events[idx][0] < since:
                        idx += 1
                    if idx < len(self.events):
                        break
                    left = deadline - now()
                    if left <= 0:
                        raise TimeoutError(
                            f"route {self.net} in {self.ns.name}: no matching change within "
                            f"{timeout}s (now {sorted(self.nexthops())})")
                    self.cond.wait(left)
                t, _line = self.events[idx]
                idx += 1
            hops = self.nexthops()
            if predicate(hops):
                return t, hops

    def close(self) -> None:
        stop_process(self.proc, timeout=1.0)


def wait_until(fn: Callable[[], Any], timeout: float, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll fn() until it returns a truthy value (returned) or raise TimeoutError."""
    deadline = now() + timeout
    while True:
        v = fn()
        if v:
            return v
        if now() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- BIRD

_BIRD_ROW = re.compile(r"^(\S+)\s+(\S+)\s+(Up|Down|Init|AdminDown)\s+(\S+(?:\s\S+)?)\s+"
                       r"([\d.]+)\s+([\d.]+)\s*$")


def parse_bird_bfd_sessions(text: str) -> list[dict[str, Any]]:
    """Parse `birdc show bfd sessions` into dicts:
    {protocol, peer, interface, state, since, interval (s), timeout (s)}."""
    sessions = []
    proto = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("BIRD ") or line.startswith("IP address"):
            continue
        if line.endswith(":") and " " not in line:
            proto = line[:-1]
            continue
        m = _BIRD_ROW.match(line)
        if m:
            sessions.append({"protocol": proto, "peer": m.group(1), "interface": m.group(2),
                             "state": m.group(3), "since": m.group(4),
                             "interval": float(m.group(5)), "timeout": float(m.group(6))})
    return sessions


class Bird:
    """A BIRD 2 daemon running in the foreground inside a namespace.

        bird = Bird.start(ns, conf_text)      # writes ns.dir/bird.conf, waits for the socket
        bird.bfd_sessions()                   # parsed `show bfd sessions`
        bird.birdc("show route")              # raw text
    """

    def __init__(self, ns: Netns, conf: str, sock: str, proc: subprocess.Popen, log_path: str):
        self.ns, self.conf, self.sock, self.proc, self.log_path = ns, conf, sock, proc, log_path

    @classmethod
    def start(cls, ns: Netns, config: str, name: str = "bird", timeout: float = 10) -> "Bird":
        require_tools("bird", "birdc")
        conf = os.path.join(ns.dir, f"{name}.conf")
        sock = os.path.join(ns.dir, f"{name}.ctl")
        pidf = os.path.join(ns.dir, f"{name}.pid")
        log_path = os.path.join(ns.dir, f"{name}.log")
        with open(conf, "w") as f:
            f.write(config)
        check = subprocess.run(["bird", "-p", "-c", conf], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"bad BIRD config {conf}: {check.stderr.strip()}\n{config}")
        proc = ns.popen(["bird", "-f", "-c", conf, "-s", sock, "-P", pidf], log_path=log_path)
        bird = cls(ns, conf, sock, proc, log_path)
        wait_until(lambda: bird._ready(), timeout, what=f"BIRD control socket {sock}")
        return bird

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"BIRD exited ({self.proc.returncode}): {read_tail(self.log_path)}")
        if not os.path.exists(self.sock):
            return False
        return run(["birdc", "-s", self.sock, "show", "status"], check=False).returncode == 0

    def birdc(self, *cmd: str) -> str:
        """Run one birdc command (words), return its text output."""
        return run(["birdc", "-s", self.sock, *cmd]).stdout

    def bfd_sessions(self) -> list[dict[str, Any]]:
        return parse_bird_bfd_sessions(self.birdc("show", "bfd", "sessions"))

    def reconfigure(self, config: str) -> str:
        """Rewrite the config file and apply it with `birdc configure` (BIRD keeps running)."""
        check = subprocess.run(["bird", "-p", "-c", "/dev/stdin"], input=config,
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"bad BIRD config: {check.stderr.strip()}\n{config}")
        with open(self.conf, "w") as f:
            f.write(config)
        out = self.birdc("configure")
        if "Reconfigured" not in out and "Reconfiguration in progress" not in out:
            raise RuntimeError(f"birdc configure failed: {out}")
        return out

    def bfd_state(self, peer: str) -> str | None:
        """State of the BFD session to `peer` (None: no such session)."""
        want = ipaddress.ip_address(peer)
        for s in self.bfd_sessions():
            try:
                if ipaddress.ip_address(s["peer"]) == want:
                    return s["state"]
            except ValueError:
                continue
        return None

    def wait_bfd_state(self, peer: str, state: str, timeout: float = 10) -> None:
        wait_until(lambda: self.bfd_state(peer) == state, timeout,
                   what=f"BIRD BFD session to {peer} {state} (now {self.bfd_state(peer)})")

    def stop(self) -> int | None:
        return stop_process(self.proc)


def bird_router_config(routes: list[tuple[str, list[str]]], interface: str = "*",
                       min_rx_ms: int = 50, min_tx_ms: int = 50, multiplier: int = 3,
                       idle_tx_ms: int = 1000, extra: str = "", bfd_options: str = "") -> str:
    """BIRD config for a router holding static routes `prefix via NH bfd [via NH bfd]...`
    exported to the kernel, with one BFD interface block. IPv4 and IPv6 prefixes may mix.
    bfd_options: more statements inside the interface block, e.g. authentication
    (`authentication keyed sha1; password "s" { id 1; };`)."""
    v4 = [(p, nhs) for p, nhs in routes if ipaddress.ip_network(p, strict=False).version == 4]
    v6 = [(p, nhs) for p, nhs in routes if ipaddress.ip_network(p, strict=False).version == 6]
    out = [
        "log stderr all;",
        "router id 198.18.255.1;",
        "protocol device { scan time 10; }",
        f'protocol bfd bfd1 {{\n  interface "{interface}" {{ min rx interval {min_rx_ms} ms; '
        f"min tx interval {min_tx_ms} ms; idle tx interval {idle_tx_ms} ms; "
        f"multiplier {multiplier}; {bfd_options} }};\n}}",
    ]
    for fam, rs in (("ipv4", v4), ("ipv6", v6)):
        if not rs:
            continue
        lines = "\n".join(f"  route {p} " + " ".join(f"via {nh} bfd" for nh in nhs) + ";"
                          for p, nhs in rs)
        out.append(f"protocol static static_{fam} {{\n  {fam};\n{lines}\n}}")
        out.append(f"protocol kernel kernel_{fam} {{\n  {fam} {{ import none; "
                   f'export where proto = "static_{fam}"; }};\n}}')
    out.append(extra)
    return "\n".join(out) + "\n"


def bird_bfd_peer_config(neighbors: list[tuple[str, str, str]], min_rx_ms: int = 50,
                         min_tx_ms: int = 50, multiplier: int = 3) -> str:
    """BIRD config that just runs BFD sessions to (neighbor, interface, local) triples:
    a stand-in "beacon" to validate a topology without bfd-beacon."""
    nb = "\n".join(f'  neighbor {n} dev "{i}" local {l};' for n, i, l in neighbors)
    return (
        "log stderr all;\nrouter id 198.18.255.2;\nprotocol device { scan time 10; }\n"
        f'protocol bfd bfd1 {{\n  interface "*" {{ min rx interval {min_rx_ms} ms; '
        f"min tx interval {min_tx_ms} ms; multiplier {multiplier}; }};\n{nb}\n}}\n")


# --------------------------------------------------------------------------- bfd-beacon

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)   # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def toml_dumps(doc: dict[str, Any]) -> str:
    """Write a config dict as TOML: scalars at top, dicts as [tables], lists of dicts as
    [[arrays of tables]] (one level, which is all the beacon's config needs)."""
    lines: list[str] = []
    for k, v in doc.items():
        if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
            lines.append(f"{k} = {_toml_value(v)}")
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    for k, v in doc.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"\n[[{k}]]")
                lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def read_tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- test helpers

FIGURES: list[str] = []


def figure(text: str) -> None:
    """Log a measured figure now and keep it for print_figures() at the end of the run."""
    FIGURES.append(text)
    log(f"FIGURE {text}")


def print_figures() -> None:
    """Print the figures recorded with figure(), if any (call after main())."""
    if FIGURES:
        print("figures:\n  " + "\n  ".join(FIGURES), flush=True)


def ms(t0: float, t1: float) -> float:
    """Milliseconds from t0 to t1 (both in seconds, e.g. from now())."""
    return (t1 - t0) * 1000.0


def testcase_failed(testcase: unittest.TestCase) -> bool:
    """True in tearDown() when `testcase` has failed or errored so far, so that it
    can dump diagnostics (logs, peer state) only for a failing test. Checks both the
    result lists and the internal _outcome.success flag (which one is set depends on
    the Python version); False when the outcome is unknown."""
    outcome = getattr(testcase, "_outcome", None)
    result = getattr(outcome, "result", None)
    if result is None:
        return False
    return any(t is testcase for t, _ in result.errors + result.failures) or \
        not getattr(outcome, "success", True)


def safe_call(fn: Callable[[], Any]) -> Any:
    """fn(), or "<exception text>" if it raises: for diagnostics in tearDown()."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return f"<{e}>"


class BfdctlError(RuntimeError):
    def __init__(self, msg: str, returncode: int, stdout: str, stderr: str):
        super().__init__(msg)
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


class Beacon:
    """bfd-beacon running in the foreground inside a namespace.

        beacon = Beacon.start(lb, {"daemon": {...}, "bfd": {...}, "session": [...]})
        beacon.sessions()                         # `bfdctl sessions --json`, parsed
        beacon.bfdctl("session", "set-state", "down", "--all")
        beacon.proc.send_signal(signal.SIGTERM); beacon.wait_exit()

    config: a dict written as TOML to ns.dir/<name>.toml; [daemon] control_socket defaults
    to ns.dir/<name>.sock, state_dir to ns.dir/<name>-state. stderr/stdout go to ns.dir/<name>.log (beacon.log_path)."""

    def __init__(self, ns: Netns, config_path: str, sock: str, proc: subprocess.Popen,
                 log_path: str):
        self.ns, self.config_path, self.sock, self.proc = ns, config_path, sock, proc
        self.log_path = log_path

    @staticmethod
    def write_config(ns: Netns, config: dict[str, Any], name: str = "beacon") -> tuple[str, str]:
        config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
        daemon = config.setdefault("daemon", {})
        daemon.setdefault("control_socket", os.path.join(ns.dir, f"{name}.sock"))
        # Persistent maintenance stays inside the lab, never in the host's /var/lib.
        daemon.setdefault("state_dir", os.path.join(ns.dir, f"{name}-state"))
        # keep [daemon] first for readability
        config = {"daemon": config.pop("daemon"), **config}
        path = os.path.join(ns.dir, f"{name}.toml")
        with open(path, "w") as f:
            f.write(toml_dumps(config))
        return path, daemon["control_socket"]

    @classmethod
    def start(cls, ns: Netns, config: dict[str, Any], name: str = "beacon",
              timeout: float = 10, extra_args: Iterable[str] = ()) -> "Beacon":
        binary = beacon_bin()
        bfdctl_bin()
        path, sock = cls.write_config(ns, config, name)
        log_path = os.path.join(ns.dir, f"{name}.log")
        proc = ns.popen([binary, "--config", path, *extra_args], log_path=log_path)
        beacon = cls(ns, path, sock, proc, log_path)
        wait_until(beacon._ready, timeout, interval=0.02, what=f"bfd-beacon control socket {sock}")
        return beacon

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"bfd-beacon exited ({self.proc.returncode}); log "
                               f"{self.log_path}:\n{read_tail(self.log_path)}\nconfig:\n"
                               f"{open(self.config_path).read()}")
        return os.path.exists(self.sock)

    def bfdctl(self, *args: str, json_out: bool | None = None, check: bool = True,
               timeout: float = 10) -> Any:
        """Run `bfdctl --socket SOCK ARGS...`. Returns parsed JSON when json_out is True (or
        "--json" is in args), else the CompletedProcess. check: raise BfdctlError on exit != 0.
        (The control socket is a filesystem path, so bfdctl need not enter the namespace.)"""
        return bfdctl(self.sock, *args, json_out=json_out, check=check, timeout=timeout)

    def sessions(self) -> list[dict[str, Any]]:
        """`bfdctl sessions --json` as a list of session dicts (accepts a bare list or an
        object holding a "sessions" list)."""
        data = self.bfdctl("sessions", "--json")
        if isinstance(data, dict):
            data = data.get("sessions", [])
        return data

    def session(self, peer: str) -> dict[str, Any] | None:
        want = ipaddress.ip_address(peer.split("%")[0])
        for s in self.sessions():
            try:
                if ipaddress.ip_address(str(s.get("peer", "")).split("%")[0]) == want:
                    return s
            except ValueError:
                continue
        return None

    def wait_exit(self, timeout: float = 5) -> int:
        """Wait for the daemon to exit on its own; return its exit status (raise on timeout)."""
        return self.proc.wait(timeout=timeout)

    def log_text(self) -> str:
        return read_tail(self.log_path, 10_000)

    def stop(self) -> int | None:
        return stop_process(self.proc)


def bfdctl(sock: str, *args: str, json_out: bool | None = None, check: bool = True,
           timeout: float = 10) -> Any:
    """Module-level bfdctl wrapper (see Beacon.bfdctl)."""
    if json_out is None:
        json_out = "--json" in args
    cmd = [bfdctl_bin() or "bfdctl", "--socket", sock, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise BfdctlError(f"bfdctl failed ({proc.returncode}): {' '.join(cmd)}\n"
                          f"{proc.stdout}{proc.stderr}", proc.returncode, proc.stdout, proc.stderr)
    if json_out:
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            raise BfdctlError(f"bfdctl printed invalid JSON ({e}): {proc.stdout[:500]}",
                              proc.returncode, proc.stdout, proc.stderr) from e
    return proc


# --------------------------------------------------------------------------- BFD sniffer

BFD_STATES = ("AdminDown", "Down", "Init", "Up")


def parse_bfd_frame(frame: bytes) -> dict[str, Any] | None:
    """Parse an Ethernet frame holding IPv4/IPv6 UDP to port 3784/4784 into a dict:
    {src, dst, sport, dport, ttl, tos, version, diag, state, flags, mult, my_discr,
    your_discr, length} (None for anything else). Used by BfdSniffer."""
    if len(frame) < 14:
        return None
    etype = int.from_bytes(frame[12:14], "big")
    off = 14
    if etype == 0x8100 and len(frame) >= 18:
        etype = int.from_bytes(frame[16:18], "big")
        off = 18
    if etype == 0x0800:
        ip = frame[off:]
        if len(ip) < 20 or ip[9] != 17:
            return None
        ihl = (ip[0] & 0x0F) * 4
        src, dst = str(ipaddress.ip_address(ip[12:16])), str(ipaddress.ip_address(ip[16:20]))
        ttl, tos, udp = ip[8], ip[1], ip[ihl:]
    elif etype == 0x86DD:
        ip = frame[off:]
        if len(ip) < 40 or ip[6] != 17:   # no extension headers expected
            return None
        src, dst = str(ipaddress.ip_address(ip[8:24])), str(ipaddress.ip_address(ip[24:40]))
        ttl = ip[7]
        tos = ((ip[0] & 0x0F) << 4) | (ip[1] >> 4)
        udp = ip[40:]
    else:
        return None
    if len(udp) < 8 + 24:
        return None
    sport, dport = int.from_bytes(udp[0:2], "big"), int.from_bytes(udp[2:4], "big")
    if dport not in (3784, 4784):
        return None
    b = udp[8:]
    out = {"src": src, "dst": dst, "sport": sport, "dport": dport, "ttl": ttl, "tos": tos,
           "version": b[0] >> 5, "diag": b[0] & 0x1F, "state": BFD_STATES[b[1] >> 6],
           "flags": b[1] & 0x3F, "mult": b[2], "length": b[3],
           "my_discr": int.from_bytes(b[4:8], "big"), "your_discr": int.from_bytes(b[8:12], "big")}
    # Authentication section (A bit): type, key id, MD5/SHA1 sequence number, and the
    # BFD payload itself (hex) so a test can replay a captured packet.
    out["auth_type"] = b[24] if (b[1] & 0x04) and len(b) >= 27 else 0
    out["key_id"] = b[26] if out["auth_type"] else None
    out["seq"] = int.from_bytes(b[28:32], "big") if out["auth_type"] >= 2 and len(b) >= 32 else None
    out["hex"] = b[:b[3]].hex()
    return out


def _sniff_main(iface: str, seconds: float) -> None:
    """Child side of BfdSniffer: runs inside the netns, prints one JSON line per packet."""
    import socket
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.settimeout(0.2)
    print(json.dumps({"ready": True}), flush=True)
    deadline = now() + seconds
    while now() < deadline:
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        p = parse_bfd_frame(frame)
        if p is not None:
            p["outgoing"] = addr[2] == 4   # PACKET_OUTGOING
            print(json.dumps(p), flush=True)


class BfdSniffer:
    """Records BFD control packets seen on one interface of a namespace (AF_PACKET, both
    directions), each stamped with now() on arrival. Bounded: stops after max_seconds.

        sn = BfdSniffer(router, "rt0")
        ... ; pkts = sn.packets(src="198.18.10.11", since=t0)   # list of dicts (see
        parse_bfd_frame) plus "t" (monotonic) and "outgoing" (sent by this namespace)."""

    def __init__(self, ns: Netns, iface: str, max_seconds: float = 120):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, os.path.abspath(__file__), "sniff",
             iface, str(max_seconds)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, text=True, bufsize=1)
        ns.lab.processes.append(self.proc)
        self._packets: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        threading.Thread(target=self._reader, daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError(f"BFD sniffer on {ns.name}/{iface} did not start")

    def _reader(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t = now()
            try:
                p = json.loads(line)
            except json.JSONDecodeError:
                continue
            if p.get("ready"):
                self._ready.set()
                continue
            p["t"] = t
            with self._lock:
                self._packets.append(p)

    def packets(self, since: float = 0.0, **match: Any) -> list[dict[str, Any]]:
        """Packets seen at or after `since` whose fields equal every keyword given."""
        with self._lock:
            return [p for p in self._packets
                    if p["t"] >= since and all(p.get(k) == v for k, v in match.items())]

    def close(self) -> None:
        stop_process(self.proc, timeout=1.0)


# --------------------------------------------------------------------------- test runner

def main(argv: list[str] | None = None) -> int:
    """Run the unittest tests of __main__ verbosely; print "N passed, N failed, N skipped";
    return 0 only if nothing failed. Use as `sys.exit(netlab.main())` in test files."""
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules["__main__"])
    if argv:
        suite = unittest.TestSuite(
            t for t in _flatten(suite) if any(a in t.id() for a in argv))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    # A setUpClass error counts in result.errors without a test having run.
    passed = max(0, result.testsRun - failed - skipped)
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1


def _flatten(suite: unittest.TestSuite) -> Iterable[unittest.TestCase]:
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "sniff":
        _sniff_main(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 2 and sys.argv[1] == "cleanup-stale":
        cleanup_stale()
    else:
        print("usage: netlab.py cleanup-stale | sniff IFACE SECONDS (internal)", file=sys.stderr)
        sys.exit(2)
