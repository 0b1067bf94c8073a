"""frrlab: FRR (zebra + bfdd) inside a netlab namespace, plus small helpers the FRR and
bad-input integration tests share. Stdlib only; builds on netlab (owned by the BIRD tests).

    import netlab, frrlab

    with netlab.Lab("frr") as lab:
        frr_ns = lab.netns("frr")
        ...
        frr = frrlab.Frr.start(frr_ns, frrlab.bfdd_config([frrlab.FrrPeer("198.18.20.11",
                               interface="f0", local="198.18.20.1")]))
        peer = frr.wait_peer_state("198.18.20.11", "up", timeout=10)
        peer["remote-receive-interval"]         # ms, as FRR saw them from the peer

How FRR runs here (see /work/shared/reference/interop-notes.md):
  * zebra first, then bfdd, each in the foreground (no -d) so the Popen pid is the daemon's
    pid and netlab stops it; each daemon gets its own files under RUN = ns.dir/<name>
    (pid file, zserv.api, vty sockets, bfdd control socket), RUN is chown'ed to frr:frr
    because FRR refuses `-u root` and drops to user frr;
  * FRR writes crash dirs under /var/tmp/frr: every daemon is started through
    `sh -c 'mount --bind RUN/vartmp /var/tmp && exec DAEMON ...'`; `ip netns exec` already
    gives each command a private (slave) mount namespace, so the bind mount stays local;
  * query with `vtysh --vty_socket RUN -c 'show bfd peers json'`.

FRR `show bfd peers json` (8.4) fields used here: peer, local, interface, multihop,
passive-mode, status ("up"/"down"/"init"/"shutdown"), diagnostic, remote-diagnostic, id,
remote-id, receive-interval, transmit-interval, detect-multiplier, remote-receive-interval,
remote-transmit-interval, remote-detect-multiplier (intervals in ms).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Callable

import netlab

ZEBRA = "/usr/lib/frr/zebra"
BFDD = "/usr/lib/frr/bfdd"


def require_frr() -> None:
    netlab.require(os.access(ZEBRA, os.X_OK) and os.access(BFDD, os.X_OK),
                   "FRR not installed (apt-get install frr)")
    netlab.require_tools("vtysh")


@dataclasses.dataclass
class FrrPeer:
    """One `peer` block of bfdd's configuration."""
    peer: str
    local: str | None = None           # local-address
    interface: str | None = None
    multihop: bool = False
    passive: bool = False               # passive-mode
    rx_ms: int = 100                    # receive-interval
    tx_ms: int = 100                    # transmit-interval
    mult: int = 3                       # detect-multiplier
    minimum_ttl: int | None = None      # multihop only

    def render(self) -> str:
        head = f" peer {self.peer}"
        if self.multihop:
            head += " multihop"
        if self.local:
            head += f" local-address {self.local}"
        if self.interface:
            head += f" interface {self.interface}"
        lines = [head, f"  receive-interval {self.rx_ms}", f"  transmit-interval {self.tx_ms}",
                 f"  detect-multiplier {self.mult}"]
        if self.passive:
            lines.append("  passive-mode")
        if self.minimum_ttl is not None:
            lines.append(f"  minimum-ttl {self.minimum_ttl}")
        lines += ["  no shutdown", " exit"]
        return "\n".join(lines)


def bfdd_config(peers: list[FrrPeer], debug: bool = True) -> str:
    out = ["log stdout debugging"] if debug else []
    if debug:
        out += ["debug bfd peer", "debug bfd network", "debug bfd zebra"]
    out.append("bfd")
    out += [p.render() for p in peers]
    out.append("exit")
    return "\n".join(out) + "\n"


def _same_addr(a: str | None, b: str) -> bool:
    if not a:
        return False
    try:
        return ipaddress.ip_address(a.split("%")[0]) == ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return False


class Frr:
    """zebra + bfdd in one namespace, with their own run directory (self.run_dir)."""

    def __init__(self, ns: netlab.Netns, run_dir: str):
        self.ns = ns
        self.run_dir = run_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, str] = {}

    @classmethod
    def start(cls, ns: netlab.Netns, bfdd_conf: str, name: str = "frr",
              timeout: float = 15) -> "Frr":
        require_frr()
        run_dir = os.path.join(ns.dir, name)
        vartmp = os.path.join(run_dir, "vartmp")
        os.makedirs(vartmp, exist_ok=True)
        # every directory above RUN must be traversable by user frr
        d = run_dir
        while d.startswith(tempfile.gettempdir() + "/"):
            os.chmod(d, os.stat(d).st_mode | 0o755)
            d = os.path.dirname(d)
        # a restart reuses RUN: stale sockets would make the readiness checks pass too early
        for n in os.listdir(run_dir):
            if n.endswith((".vty", ".pid", ".api", ".sock")):
                os.unlink(os.path.join(run_dir, n))
        frr = cls(ns, run_dir)
        with open(os.path.join(run_dir, "zebra.conf"), "w") as f:
            f.write("log stdout informational\n")
        with open(os.path.join(run_dir, "bfdd.conf"), "w") as f:
            f.write(bfdd_conf)
        for root, dirs, files in os.walk(run_dir):
            for n in dirs + files:
                shutil.chown(os.path.join(root, n), "frr", "frr")
        shutil.chown(run_dir, "frr", "frr")
        common = ["-A", "127.0.0.1", "-P", "0", "-z", f"{run_dir}/zserv.api",
                  "--vty_socket", run_dir]
        frr._spawn("zebra", [ZEBRA, *common, "-i", f"{run_dir}/zebra.pid",
                             "-f", f"{run_dir}/zebra.conf"], vartmp, timeout)
        frr._spawn("bfdd", [BFDD, *common, "-i", f"{run_dir}/bfdd.pid",
                            "-f", f"{run_dir}/bfdd.conf", "--bfdctl", f"{run_dir}/bfdd.sock"],
                   vartmp, timeout)
        netlab.wait_until(lambda: frr._vtysh_ok(), timeout, interval=0.1,
                          what=f"vtysh answering in {ns.name}")
        return frr

    def _spawn(self, daemon: str, cmd: list[str], vartmp: str, timeout: float) -> None:
        log_path = os.path.join(self.run_dir, f"{daemon}.log")
        self.logs[daemon] = log_path
        wrapped = ["sh", "-c", 'mount --bind "$1" /var/tmp && shift && exec "$@"', "sh", vartmp,
                   *cmd]
        proc = self.ns.popen(wrapped, log_path=log_path)
        self.procs[daemon] = proc
        sock = os.path.join(self.run_dir, f"{daemon}.vty")

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"FRR {daemon} exited ({proc.returncode}) in {self.ns.name}:\n"
                                   f"{netlab.read_tail(log_path, 40)}")
            return os.path.exists(sock)

        netlab.wait_until(ready, timeout, interval=0.05, what=f"FRR {daemon} vty socket {sock}")

    def _vtysh_ok(self) -> bool:
        for d, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"FRR {d} exited ({p.returncode}):\n"
                                   f"{netlab.read_tail(self.logs[d], 40)}")
        r = self.vtysh_raw("show bfd peers json", check=False)
        if r.returncode != 0:
            return False
        try:
            json.loads(r.stdout)
        except json.JSONDecodeError:
            return False
        return True

    def vtysh_raw(self, *cmds: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
        args = ["vtysh", "--vty_socket", self.run_dir]
        for c in cmds:
            args += ["-c", c]
        return netlab.run(args, check=check, timeout=timeout, ns=self.ns.name)

    def vtysh(self, *cmds: str) -> str:
        """Run vtysh commands (each one -c) in the namespace; return stdout."""
        return self.vtysh_raw(*cmds).stdout

    def peers(self) -> list[dict[str, Any]]:
        """`show bfd peers json`, parsed."""
        out = self.vtysh("show bfd peers json")
        data = json.loads(out) if out.strip() else []
        return data if isinstance(data, list) else [data]

    def peer(self, addr: str, multihop: bool | None = None) -> dict[str, Any] | None:
        for p in self.peers():
            if _same_addr(p.get("peer"), addr) and (multihop is None or
                                                    bool(p.get("multihop")) == multihop):
                return p
        return None

    def peer_state(self, addr: str) -> str | None:
        p = self.peer(addr)
        return None if p is None else p.get("status")

    def wait_peer_state(self, addr: str, state: str, timeout: float = 10,
                        interval: float = 0.02) -> dict[str, Any]:
        """Wait until FRR's peer `addr` has status `state` ("up", "down", "init"); return it."""
        found: dict[str, Any] = {}

        def check() -> bool:
            p = self.peer(addr)
            found["p"] = p
            return p is not None and p.get("status") == state

        try:
            netlab.wait_until(check, timeout, interval=interval,
                              what=f"FRR peer {addr} status {state}")
        except TimeoutError as e:
            p = found.get("p")
            raise TimeoutError(f"{e} (now {p.get('status') if p else 'no such peer'}: {p})") from None
        return found["p"]

    def log_tail(self, daemon: str = "bfdd", lines: int = 40) -> str:
        return netlab.read_tail(self.logs.get(daemon, ""), lines)

    def stop(self) -> None:
        for d in ("bfdd", "zebra"):
            if d in self.procs:
                netlab.stop_process(self.procs[d])


# --------------------------------------------------------------------------- beacon side

def beacon_session(beacon: netlab.Beacon, peer: str) -> dict[str, Any] | None:
    return beacon.session(peer)


def wait_beacon_state(beacon: netlab.Beacon, peer: str, state: str,
                      timeout: float = 10) -> dict[str, Any]:
    """Wait until the beacon's session to `peer` is in `state` ("Up", "Down", ...)."""
    found: dict[str, Any] = {}

    def check() -> bool:
        s = beacon.session(peer)
        found["s"] = s
        return s is not None and s.get("state") == state

    try:
        netlab.wait_until(check, timeout, interval=0.02, what=f"beacon session {peer} {state}")
    except TimeoutError as e:
        s = found.get("s")
        raise TimeoutError(f"{e} (now {s.get('state') if s else 'no such session'}; all: "
                           f"{beacon.sessions()})") from None
    return found["s"]


def poll_until(fn: Callable[[], Any], timeout: float, interval: float = 0.005) -> tuple[float, Any]:
    """Poll fn() until truthy; return (now() at that moment, value). Raises TimeoutError."""
    deadline = netlab.now() + timeout
    while True:
        v = fn()
        if v:
            return netlab.now(), v
        if netlab.now() >= deadline:
            raise TimeoutError(f"poll_until: timed out after {timeout}s")
        time.sleep(interval)


# --------------------------------------------------------------------------- raw sockets

def ctl_exchange(sock_path: str, payload: bytes, timeout: float = 5.0,
                 max_bytes: int = 1 << 20) -> bytes:
    """Send raw bytes to a UNIX stream socket, half-close, read until EOF or one full line
    (newline-terminated) arrives; return what was read (b"" if the server closed)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        while len(buf) < max_bytes:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
            if payload.endswith(b"\n") and buf.count(b"\n") >= payload.count(b"\n"):
                break
        return buf
    finally:
        s.close()
