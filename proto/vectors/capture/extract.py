#!/usr/bin/env python3
"""Writes proto/vectors/*.hex from a pcap. Expectations come from Wireshark's
BFD dissector (tshark fields), not from our decoder, so they are an
independent oracle."""
import hashlib, subprocess, sys, json

FIELDS = ["frame.number", "frame.time_relative", "ip.src", "ip.dst", "ip.ttl", "udp.srcport",
          "udp.dstport", "bfd.version", "bfd.diag", "bfd.sta", "bfd.flags.p", "bfd.flags.f",
          "bfd.flags.c", "bfd.flags.a", "bfd.flags.d", "bfd.flags.m", "bfd.detect_time_multiplier",
          "bfd.message_length", "bfd.my_discriminator", "bfd.your_discriminator",
          "bfd.desired_min_tx_interval", "bfd.required_min_rx_interval",
          "bfd.required_min_echo_interval", "bfd.auth.type", "bfd.auth.len", "bfd.auth.key",
          "bfd.auth.seq_num", "udp.payload"]
STATES = {0: "AdminDown", 1: "Down", 2: "Init", 3: "Up"}
AUTH = {1: "simple-password", 2: "keyed-md5", 3: "meticulous-keyed-md5", 4: "keyed-sha1",
        5: "meticulous-keyed-sha1"}

def num(s):
    return int(s, 0) if s else 0

def frames(pcap):
    cmd = ["tshark", "-r", pcap, "-T", "fields", "-E", "separator=|"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        v = dict(zip(FIELDS, line.split("|")))
        res[int(v["frame.number"])] = v
    return res

def verify_digest(payload, secret):
    t = payload[24]
    key = secret.encode()
    if t in (2, 3):
        n, h = 16, hashlib.md5
    elif t in (4, 5):
        n, h = 20, hashlib.sha1
    elif t == 1:
        return payload[27:24 + payload[25]] == key
    else:
        return False
    pkt = bytearray(payload[:payload[3]])
    got = bytes(pkt[32:32 + n])
    pkt[32:32 + n] = key.ljust(n, b"\0")
    return h(bytes(pkt)).digest() == got

def write(outdir, f, name, source, what, secret=None, key_id=None):
    payload = bytes.fromhex(f["udp.payload"])
    exp = {
        "version": num(f["bfd.version"]), "diag": num(f["bfd.diag"]),
        "state": STATES[num(f["bfd.sta"])], "poll": num(f["bfd.flags.p"]),
        "final": num(f["bfd.flags.f"]), "cpi": num(f["bfd.flags.c"]),
        "auth": num(f["bfd.flags.a"]), "demand": num(f["bfd.flags.d"]),
        "mult": num(f["bfd.detect_time_multiplier"]), "length": num(f["bfd.message_length"]),
        "my_disc": num(f["bfd.my_discriminator"]), "your_disc": num(f["bfd.your_discriminator"]),
        "min_tx": num(f["bfd.desired_min_tx_interval"]),
        "min_rx": num(f["bfd.required_min_rx_interval"]),
        "echo_rx": num(f["bfd.required_min_echo_interval"]),
    }
    assert num(f["bfd.flags.m"]) == 0
    lines = [f"# source: {source}",
             f"# what: {what}",
             f"# captured: tshark 4.0.17 on the veth, frame {f['frame.number']} "
             f"(t={float(f['frame.time_relative']):.3f}s), {f['ip.src']}:{f['udp.srcport']} -> "
             f"{f['ip.dst']}:{f['udp.dstport']}, IP TTL {f['ip.ttl']}",
             "# expect " + " ".join(f"{k}={v}" for k, v in list(exp.items())[:9]),
             "# expect " + " ".join(f"{k}={v}" for k, v in list(exp.items())[9:])]
    if exp["auth"]:
        a = {"auth_type": AUTH[num(f["bfd.auth.type"])], "auth_len": num(f["bfd.auth.len"]),
             "key_id": num(f["bfd.auth.key"])}
        if f["bfd.auth.seq_num"]:
            a["seq"] = num(f["bfd.auth.seq_num"])
        lines.append("# expect " + " ".join(f"{k}={v}" for k, v in a.items()))
        ok = verify_digest(payload, secret)
        assert ok, f"auth check failed for {name}"
        lines.append(f"# auth-key: id={key_id} secret=\"{secret}\" (ASCII); "
                     + ("password matches" if payload[24] == 1 else
                        "digest verified independently with Python hashlib over Length bytes, "
                        "key zero-padded in the digest field (RFC 5880 §6.7.3/§6.7.4)"))
    hexs = payload.hex()
    lines += [hexs[i:i + 48] for i in range(0, len(hexs), 48)]
    with open(f"{outdir}/{name}.hex", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(name, exp["state"], "P" if exp["poll"] else "", "F" if exp["final"] else "", len(payload))

if __name__ == "__main__":
    spec = json.load(open(sys.argv[1]))
    fr = frames(spec["pcap"])
    for v in spec["vectors"]:
        write(spec["outdir"], fr[v["frame"]], v["name"], spec["source"], v["what"],
              spec.get("secret"), v.get("key_id"))
