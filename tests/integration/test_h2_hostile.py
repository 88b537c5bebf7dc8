"""Hostile HTTP/2 clients: a few hundred connections (600) of frames built at
random from a fixed seed (odd headers and pseudo-headers, lying lengths,
frames on the wrong streams, bad settings, window updates of 0, flipped
bytes, garbage) against kitchen, the sanitized build too in
`make test-sanitize`. Each gets whatever answer HTTP/2 allows, a status
from the application is never 500, and the server goes on serving: a
plain request over HTTP/2 and HTTP/1.1 works after every batch, and it
exits cleanly at the end. The seed and the case number are in every
failure, so a failing case can be replayed."""

import os
import random
import socket

import hpack
import pytest
import requests

from conftest import SLOW, read_until_quiet
from test_h2 import H2

# Seeds run every time; MICROC_H2_SEED=N runs N instead, to explore. Seed 39
# found a stream freed while the server still meant to start it (a
# use-after-free in h2.c, fixed): it stays as its regression.
SEEDS = ([int(os.environ["MICROC_H2_SEED"])] if os.environ.get("MICROC_H2_SEED")
         else [39, 20261202])
CASES = 600
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, END_HEADERS, PADDED, PRIO_FLAG = 0x1, 0x4, 0x8, 0x20

PATHS = ["/items/1", "/items/x", "/search?q=a", "/headers", "/stream?n=2&size=10",
         "/sink", "/echo-stream", "/upload", "/nowhere", "", "*", "relative", "/%00",
         "/items/" + "7" * 3000, "/?" + "a=b&" * 500]
METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "get", "", "G ET",
           "CONNECT", "X" * 300]
EXTRA = [("content-length", "0"), ("content-length", "5"), ("content-length", "-1"),
         ("content-length", "99999999999999999999"), ("content-length", "abc"),
         ("content-type", "application/json"), ("te", "trailers"), ("te", "gzip"),
         ("connection", "close"), ("keep-alive", "1"), ("transfer-encoding", "chunked"),
         ("upgrade", "h2c"), ("Host", "x"), ("host", "other"), ("UPPER", "case"),
         ("x-ctl", "a\x00b"), ("x-crlf", "a\r\nb: c"), ("x-del", "\x7f"), ("", "empty"),
         ("x-space ", "v"), (":bogus", "pseudo"), ("x-long", "v" * 9000),
         ("traceparent", "00-" + "f" * 32 + "-" + "1" * 16 + "-01"),
         ("x-request-timeout-ms", "1"), ("x-request-id", "\"quoted\\")]


def frame(kind, flags, sid, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([kind, flags])
            + (sid & 0x7FFFFFFF).to_bytes(4, "big") + payload)


def request_headers(rng):
    hs = []
    def pick(good, odd):  # mostly sensible, so that many reach the application
        return rng.choice(good) if rng.random() < 0.6 else rng.choice(odd)

    pseudo = [(":method", pick(["GET", "POST"], METHODS)),
              (":path", pick(["/items/1", "/sink", "/echo-stream", "/search?q=a"], PATHS)),
              (":scheme", pick(["http"], ["https", "", "ftp"])),
              (":authority", pick(["localhost"], ["", "a" * 300, "x:99999"]))]
    for p in pseudo:
        if rng.random() < 0.9:
            hs.append(p)
    if rng.random() < 0.1:
        hs.append(rng.choice(pseudo))  # a pseudo-header twice
    rng.shuffle(hs) if rng.random() < 0.1 else None  # pseudo-headers out of order
    for _ in range(rng.randrange(4)):
        hs.append(rng.choice(EXTRA))
    return hs


def one_case(rng, port):
    """Sends one connection's worth of frames; returns the frames that came back."""
    enc = hpack.Encoder()
    out = bytearray(PREFACE + frame(SETTINGS, 0, 0))
    sid = 1
    for _ in range(rng.randrange(1, 7)):
        act = rng.random()
        if act < 0.45:  # a request head, maybe with a body and trailers
            s = sid if rng.random() < 0.85 else rng.choice([0, 2, sid - 2, 2**31 - 1])
            block = enc.encode(request_headers(rng))
            flags = END_HEADERS if rng.random() < 0.9 else 0
            if rng.random() < 0.6:
                flags |= END_STREAM
            if rng.random() < 0.1:
                flags |= PADDED
                block = bytes([rng.randrange(256)]) + block
            out += frame(HEADERS, flags, s, block)
            if not flags & END_HEADERS and rng.random() < 0.7:
                out += frame(CONTINUATION, END_HEADERS, s, enc.encode([("x-more", "1")]))
            if not flags & END_STREAM:
                for _ in range(rng.randrange(3)):
                    n = rng.choice([0, 1, 5, 1000, 16384, 20000])
                    out += frame(DATA, 0, s, rng.randbytes(n))
                if rng.random() < 0.3:
                    trailers = [("x-t", "1")] + ([(":path", "/x")] if rng.random() < 0.3 else [])
                    out += frame(HEADERS, END_HEADERS | END_STREAM, s, enc.encode(trailers))
                elif rng.random() < 0.6:
                    out += frame(DATA, END_STREAM, s, rng.randbytes(rng.randrange(10)))
            sid += 2
        elif act < 0.55:
            out += frame(DATA, rng.choice([0, 1, PADDED]), rng.choice([0, 1, sid, 99]),
                         rng.randbytes(rng.randrange(64)))
        elif act < 0.62:
            out += frame(WINDOW_UPDATE, 0, rng.choice([0, 1, sid]),
                         rng.choice([0, 1, 2**31 - 1, 2**31]).to_bytes(4, "big"))
        elif act < 0.68:
            params = b"".join(rng.randrange(1, 10).to_bytes(2, "big")
                              + rng.choice([0, 1, 16383, 2**24, 2**31, 2**32 - 1]).to_bytes(4, "big")
                              for _ in range(rng.randrange(1, 4)))
            out += frame(SETTINGS, rng.choice([0, 1]), rng.choice([0, 0, 3]), params)
        elif act < 0.74:
            out += frame(RST_STREAM, 0, rng.choice([0, 1, sid]),
                         rng.randrange(2**32).to_bytes(4, "big"))
        elif act < 0.8:
            out += frame(PRIORITY, 0, rng.choice([1, sid]),
                         rng.choice([1, sid, 0]).to_bytes(4, "big") + b"\x10")
        elif act < 0.85:
            out += frame(rng.choice([PING, GOAWAY, PUSH, 0x0A, 0xFF]), rng.randrange(256),
                         rng.choice([0, 1]), rng.randbytes(rng.choice([0, 7, 8, 12])))
        elif act < 0.92:
            out += frame(CONTINUATION, END_HEADERS, rng.choice([1, sid]), rng.randbytes(20))
        else:
            out += rng.randbytes(rng.randrange(1, 40))
    if rng.random() < 0.2:  # a few flipped bytes past the preface
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(PREFACE), len(out))
            out[i] ^= 1 << rng.randrange(8)
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
        try:
            s.sendall(out)
        except OSError:
            pass  # closed on us mid-way: an answer too
        got = read_until_quiet(s, total=2)
    return got


def statuses(data):
    """The :status of every HEADERS the server sent (headers only, best effort: a
    block that does not decode is skipped)."""
    dec = hpack.Decoder()
    dec.max_allowed_table_size = 65536
    found, i = [], 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        kind, flags = data[i + 3], data[i + 4]
        payload = bytes(data[i + 9:i + 9 + n])
        i += 9 + n
        if kind != HEADERS:
            continue
        if flags & PADDED:
            payload = payload[1:len(payload) - payload[0]]
        if flags & PRIO_FLAG:
            payload = payload[5:]
        try:
            hs = dict(dec.decode(payload))
        except Exception:
            continue
        if ":status" in hs:
            found.append(hs[":status"])
    return found


@pytest.mark.parametrize("seed", SEEDS)
def test_hostile_h2_clients_get_answers_and_the_server_goes_on(kitchen_or_gateway, seed):
    target = kitchen_or_gateway
    rng = random.Random(seed)
    seen = set()
    for case in range(CASES):
        got = one_case(rng, target.port)
        for st in statuses(got):
            seen.add(st)
            assert len(st) == 3 and st.isdigit() and st != "500", (seed, case, st)
        if case % 25 == 24:
            assert target.alive(), (seed, case, target.log_text()[-2000:])
            c = H2(target.port)
            try:
                status, _, body = c.get("/items/7")
                assert status == 200, (seed, case, body)
            finally:
                c.close()
            assert requests.get(f"{target.url}/items/7", timeout=10 * SLOW).status_code == 200
    # the cases reached the application, not only the framing layer
    assert seen & {"200", "204", "404", "405", "422"}, seen
