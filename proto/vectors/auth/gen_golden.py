#!/usr/bin/env python3
"""Golden authenticated BFD packets for test/unit/core/auth_test.cpp (AUTH-05).

Independent of the C++ code: the packet layout is written out by hand here and
the digest is Python hashlib's, computed as RFC 5880 §6.7.3/§6.7.4 specify
(the key zero-padded to 16/20 bytes in the digest field, the hash over the
whole packet, Length bytes; not HMAC). Prints one line per vector:
type secret-hex packet-hex. The test embeds the output.
"""
import hashlib
import struct


def header(length: int) -> bytes:
    # version 1, diag 0, state Up, A bit, Detect Mult 3, MD 0x11223344,
    # YD 0x55667788, Desired Min TX 1 s, Required Min RX 500 ms, echo 0
    return bytes([0x20, 0xC4, 3, length]) + struct.pack(
        ">IIIII", 0x11223344, 0x55667788, 1_000_000, 500_000, 0)


def keyed(auth_type: int, key: bytes, key_id: int = 7, seq: int = 0xDEADBEEF) -> bytes:
    dlen = 16 if auth_type in (2, 3) else 20
    auth_len = 8 + dlen
    section = bytes([auth_type, auth_len, key_id, 0]) + struct.pack(">I", seq)
    pkt = header(24 + auth_len) + section
    digest = (hashlib.md5 if dlen == 16 else hashlib.sha1)(pkt + key.ljust(dlen, b"\0")).digest()
    return pkt + digest


def simple(password: bytes, key_id: int = 7) -> bytes:
    return header(24 + 3 + len(password)) + bytes([1, 3 + len(password), key_id]) + password


VECTORS = [
    (2, b"secret-md5"), (3, b"secret-md5"), (4, b"secret-sha1"), (5, b"secret-sha1"),
    (4, bytes(range(1, 21))), (2, bytes(range(0xF0, 0x100))),
]

if __name__ == "__main__":
    for t, k in VECTORS:
        print(t, k.hex(), keyed(t, k).hex())
    print(1, b"password".hex(), simple(b"password").hex())
