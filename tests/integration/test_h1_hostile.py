"""Hostile HTTP/1.1 clients: a few hundred connections per seed of pipelined
requests built at random (odd request lines and versions, missing or
doubled Host, lying and doubled Content-Length, chunked framing right and
wrong, Expect, Connection, long and odd header values, flipped bytes, heads
sent a few bytes at a time) against kitchen and against microc-gateway in
front of it, the sanitized builds too in `make test-sanitize`. Every
answer is a well-formed status line and never a 500, and the server goes
on serving. MICROC_H1_SEED=N explores another seed."""

import os
import random
import re
import socket
import time

import pytest
import requests

from conftest import SLOW, read_until_quiet

SEEDS = ([int(os.environ["MICROC_H1_SEED"])] if os.environ.get("MICROC_H1_SEED")
         else [1, 20261202])
CASES = 400

TARGETS = ["/items/1", "/items/x", "/sink", "/echo-stream", "/upload", "/sink-small",
           "/search?q=a", "/headers", "/nowhere", "*", "http://x/items/1", "/%zz",
           "/items/" + "9" * 5000, ""]
METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "get", "CONNECT", "PRI",
           "G\x00T", "X" * 100]
VERSIONS = ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.10",
            "HTTP/1", "http/1.1", ""]
ODD = ["Expect: 100-continue", "Expect: nonsense", "Connection: close",
       "Connection: keep-alive", "Connection: upgrade", "Upgrade: h2c",
       "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: identity",
       "Transfer-Encoding: chunked, gzip", "Content-Type: application/json",
       "X-Ctl: a\x01b", "X-Del: \x7f", "X-Bare-CR: a\rb", " X-Leading: space",
       "X-Fold: a\r\n folded", "NoColon", ": empty-name", "X-Long: " + "v" * 10000,
       "traceparent: 00-" + "a" * 32 + "-" + "b" * 16 + "-01",
       "X-Request-Timeout-Ms: 0", "X-Request-Id: " + "r" * 300]


def chunked(rng, body):
    out = b""
    i = 0
    while i < len(body):
        n = rng.randrange(1, 5000)
        piece = body[i:i + n]
        size = b"%x" % len(piece)
        if rng.random() < 0.05:
            size = rng.choice([b"zz", b"-1", b"fffffffffffffffffff", b"", b"1;ext=1"])
        out += size + b"\r\n" + piece + (b"\r\n" if rng.random() < 0.97 else b"XX")
        i += n
    out += b"0\r\n"
    if rng.random() < 0.2:
        out += b"X-Trailer: t\r\n"
    return out + b"\r\n"


def one_request(rng):
    method = rng.choice(["GET", "POST"]) if rng.random() < 0.6 else rng.choice(METHODS)
    target = rng.choice(TARGETS[:8]) if rng.random() < 0.6 else rng.choice(TARGETS)
    version = rng.choice(VERSIONS)
    lines = [f"{method} {target} {version}".encode("latin-1")]
    if rng.random() < 0.9:
        lines.append(b"Host: localhost")
    if rng.random() < 0.05:
        lines.append(b"Host: other")
    for _ in range(rng.randrange(3)):
        lines.append(rng.choice(ODD).encode("latin-1"))
    body = rng.randbytes(rng.choice([0, 0, 5, 100, 2000, 70000]))
    framing = rng.random()
    if framing < 0.45:
        n = len(body)
        if rng.random() < 0.15:
            n = rng.choice([n + 10, max(n - 3, 0), -1, 10**20])
        lines.append(b"Content-Length: %d" % n)
        if rng.random() < 0.05:
            lines.append(b"Content-Length: %d" % (n + 1))
        payload = body
    elif framing < 0.75:
        lines.append(b"Transfer-Encoding: chunked")
        if rng.random() < 0.05:
            lines.append(b"Content-Length: 3")
        payload = chunked(rng, body)
    else:
        payload = b""
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def one_case(rng, port):
    out = bytearray(b"".join(one_request(rng) for _ in range(rng.randrange(1, 4))))
    if rng.random() < 0.15:
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
        try:
            if rng.random() < 0.1:  # a few bytes at a time
                for i in range(0, min(len(out), 400), 7):
                    s.sendall(out[i:i + 7])
                    time.sleep(0.001)
                s.sendall(out[400:])
            else:
                s.sendall(out)
            s.shutdown(socket.SHUT_WR) if rng.random() < 0.3 else None
        except OSError:
            pass  # closed on us mid-way: an answer too
        got = read_until_quiet(s, total=3)
    return bytes(out), got


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@pytest.mark.parametrize("seed", SEEDS)
def test_hostile_h1_clients_get_answers_and_the_server_goes_on(kitchen_or_gateway, seed):
    target = kitchen_or_gateway
    rng = random.Random(seed)
    seen = set()
    for case in range(CASES):
        sent, got = one_case(rng, target.port)
        if sent.startswith(b"PRI "):
            continue  # may read as HTTP/2's preface: answered in HTTP/2
        if got:
            assert got.startswith(b"HTTP/1."), (seed, case, bytes(got[:200]))
        for m in STATUS_LINE.finditer(got):
            st = m.group(1).decode()
            seen.add(st)
            assert st != "500", (seed, case, bytes(got[:500]))
        if case % 40 == 39:
            assert target.alive(), (seed, case, target.log_text()[-2000:])
            assert requests.get(f"{target.url}/items/7", timeout=10 * SLOW).status_code == 200
    assert seen & {"200", "404", "405", "422"} and seen & {"400", "413", "431"}, seen
