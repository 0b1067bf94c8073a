#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into a directory per target.

  test/fuzz/make_seeds.py OUT_DIR

Seeds (before minimisation into test/fuzz/corpus/<target>/ with
libFuzzer's -merge=1, see test/fuzz/run --merge):
  packet, auth: every captured BIRD/FRR packet of proto/vectors/*.hex, behind
                the scenario bytes of each target (see fuzz_packet.cpp and
                fuzz_auth.cpp for their layout);
  config:       deploy/examples/*.toml and the TOML texts of the config and
                app unit tests (raw string literals containing "[");
  ctl:          the request lines ("> ...") of proto/ctl/v1/examples/*.txt.
"""
import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
AUTH_INDEX = {  # auth_type in '# expect' -> index into kAuthTypes
    "simple-password": 1, "simple": 1, "keyed-md5": 2, "meticulous-keyed-md5": 3,
    "keyed-sha1": 4, "meticulous-keyed-sha1": 5,
}


def write(out: pathlib.Path, target: str, data: bytes, name: str = "") -> None:
    """`name` set: a named seed (vector-*, example-*) that --merge always keeps."""
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / (name or "seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def vectors():
    for f in sorted((ROOT / "proto/vectors").glob("*.hex")):
        text = f.read_text()
        hexdata = "".join(l.strip() for l in text.splitlines() if not l.startswith("#"))
        m = re.search(r"auth_type=(\S+)", text)
        yield f.stem, bytes.fromhex(hexdata), AUTH_INDEX.get(m.group(1), 0) if m else 0


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = pathlib.Path(sys.argv[1])
    for stem, pkt, auth in vectors():
        # Each captured packet as is, to an Up session of its auth type.
        write(out, "packet", bytes([2 | (auth << 2), 0x40]) + pkt, "vector-" + stem)
        write(out, "auth", bytes([(auth or 4) | 0x08]) + b"\0\0\0\0" + pkt, "vector-" + stem)
        for state in range(4):
            for h1 in (0x00, 0x40):
                h0 = state | (auth << 2)
                write(out, "packet", bytes([h0, h1]) + pkt)
                write(out, "packet", bytes([h0 | 0x80, h1 | 0x20]) + pkt)
        # Two in a row, 30 ms apart.
        write(out, "packet", bytes([2 | (auth << 2), 0x83, len(pkt)]) + pkt + bytes([len(pkt)]) + pkt)
        if auth:
            seq = pkt[28:32] if len(pkt) >= 32 else b"\0\0\0\0"
            write(out, "auth", bytes([auth]) + b"\0\0\0\0" + pkt)
            write(out, "auth", bytes([auth | 0x08]) + seq + pkt)
            write(out, "auth", bytes([auth | 0x18]) + seq + pkt)
            write(out, "auth", bytes([auth | 0x28]) + seq + pkt)
        else:
            write(out, "auth", bytes([4, 0, 0, 0, 0]) + pkt)
    for f in sorted((ROOT / "deploy/examples").glob("*.toml")):
        write(out, "config", f.read_bytes(), "example-" + f.name)
    raw = re.compile(r'R"([A-Za-z_]*)\((.*?)\)\1"', re.S)
    for f in sorted(list((ROOT / "test/unit/config").glob("*.cpp")) +
                    list((ROOT / "test/unit/app").glob("*.cpp"))):
        for m in raw.finditer(f.read_text()):
            if "[" in m.group(2) or "=" in m.group(2):
                write(out, "config", m.group(2).encode())
    for f in sorted((ROOT / "proto/ctl/v1/examples").glob("*.txt")):
        lines = [l[2:] for l in f.read_text().splitlines() if l.startswith("> ")]
        for l in lines:
            write(out, "ctl", l.encode())
        write(out, "ctl", "\n".join(lines).encode(), "example-" + f.stem)
    for t in ("packet", "auth", "config", "ctl"):
        print(t, len(list((out / t).iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
