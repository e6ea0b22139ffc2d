"""Socket addresses and tuples of scap parameters and fd list blocks, printed as libsinsp
prints them (sinsp_evt's PT_SOCKADDR / PT_SOCKTUPLE rendering; ipv4tuple_to_string...)."""

from __future__ import annotations

import socket
import struct

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10  # PPM_AF_* (the driver's family numbers)


def ip_str(b: bytes) -> str:
    if len(b) == 4:
        return socket.inet_ntop(socket.AF_INET, b)
    if len(b) == 16:
        return socket.inet_ntop(socket.AF_INET6, b)
    return "0.0.0.0"


def is_mapped(b: bytes) -> bool:
    return b[:12] == b"\0" * 10 + b"\xff\xff"


def sockaddr_str(raw: bytes, new: bool) -> str:
    """A PT_SOCKADDR parameter as libsinsp prints it."""
    if not raw:
        return "<NA>" if new else "NULL"
    fam = raw[0]
    if fam == AF_UNIX:
        return clean(raw[1:].split(b"\0", 1)[0])
    if fam == AF_INET and len(raw) == 7:
        return f"{ip_str(raw[1:5])}:{struct.unpack_from('<H', raw, 5)[0]}"
    if fam == AF_INET6 and len(raw) == 19:
        return f"{ip_str(raw[1:17])}:{struct.unpack_from('<H', raw, 17)[0]}"
    return _unreadable(fam)


def socktuple_str(raw: bytes) -> str:
    """A PT_SOCKTUPLE parameter as libsinsp prints it."""
    if not raw:
        return "NULL"
    fam = raw[0]
    if fam == AF_INET and len(raw) == 13:
        sp, = struct.unpack_from("<H", raw, 5)
        dp, = struct.unpack_from("<H", raw, 11)
        return f"{ip_str(raw[1:5])}:{sp}->{ip_str(raw[7:11])}:{dp}"
    if fam == AF_INET6 and len(raw) == 37:
        sp, = struct.unpack_from("<H", raw, 17)
        dp, = struct.unpack_from("<H", raw, 35)
        s, d = raw[1:17], raw[19:35]
        if is_mapped(s) and is_mapped(d):
            s, d = s[12:], d[12:]
        return f"{ip_str(s)}:{sp}->{ip_str(d)}:{dp}"
    if fam == AF_UNIX and len(raw) >= 17:
        src, dst = struct.unpack_from("<QQ", raw, 1)
        path = clean(raw[17:].split(b"\0", 1)[0])
        return f"{src:x}->{dst:x} {path}"
    return _unreadable(fam)


def _unreadable(fam: int) -> str:
    """libsinsp's text for an address of the wrong length or an unknown family."""
    return {AF_INET: "INVALID IPv4", AF_INET6: "INVALID IPv6"}.get(fam, f"family {fam}")


def clean(b: bytes) -> str:
    """libsinsp's sanitize_string: drop what is not printable."""
    return "".join(chr(c) for c in b if 32 <= c < 127)


def tuple_fields(raw: bytes):
    """(v6, sip, sport, dip, dport) of an inet socktuple, None for other families."""
    if raw and raw[0] == AF_INET and len(raw) == 13:
        return (False, raw[1:5], struct.unpack_from("<H", raw, 5)[0], raw[7:11],
                struct.unpack_from("<H", raw, 11)[0])
    if raw and raw[0] == AF_INET6 and len(raw) == 37:
        s, d = raw[1:17], raw[19:35]
        sp, dp = struct.unpack_from("<H", raw, 17)[0], struct.unpack_from("<H", raw, 35)[0]
        if is_mapped(s) and is_mapped(d):
            return False, s[12:], sp, d[12:], dp
        return True, s, sp, d, dp
    return None
