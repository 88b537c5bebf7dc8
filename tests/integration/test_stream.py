"""Bodies in pieces on the server side: answers streamed with
mc_res_begin/write/end, and request bodies read as they come on routes with
stream_body (kitchen's /stream, /sink and /echo-stream), over HTTP/1.1 and
HTTP/2, with the memory each holds staying small."""

import json
import os
import shutil
import socket
import subprocess
import time

import pytest
import requests

from conftest import SLOW, Service, connect, one_response, read_until_closed, rss_kib
from test_h2 import H2


def fnv(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def letters(n):
    return bytes(ord("a") + i % 26 for i in range(n))


@pytest.fixture(scope="module")
def kit():
    s = Service("kitchen", "--workers", "1", "--body-timeout", "1s")
    yield s
    s.check_clean_exit()


# ---- answers in pieces, HTTP/1.1 ---------------------------------------------


def test_streamed_answer_is_chunked_when_its_length_is_unknown(kit):
    r = requests.get(f"{kit.url}/stream", params={"n": 3, "size": 5}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in r.headers
    assert r.content == letters(15)


def test_streamed_answer_of_known_length_says_so(kit):
    r = requests.get(f"{kit.url}/stream",
                     params={"n": 3, "size": 5, "length": "true"}, timeout=10)
    assert r.headers["Content-Length"] == "15"
    assert "Transfer-Encoding" not in r.headers
    assert r.content == letters(15)


def test_connection_is_kept_after_a_streamed_answer(kit):
    s = connect(kit.port)
    req = b"GET /stream?n=2&size=3 HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(req + req.replace(b"n=2", b"n=1"))
    data = b""
    while data.count(b"0\r\n\r\n") < 2:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n" in data
    s.close()


def test_http10_streamed_answer_ends_with_the_close(kit):
    s = connect(kit.port)
    s.sendall(b"GET /stream?n=2&size=4 HTTP/1.0\r\n\r\n")
    data = read_until_closed(s)
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Connection: close" in head
    assert b"chunked" not in head
    assert body == letters(8)


def test_cut_short_answer_closes_the_connection(kit):
    s = connect(kit.port)
    s.sendall(b"GET /stream?n=2&size=3&end=false HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_until_closed(s)
    assert data.endswith(b"3\r\ndef\r\n")  # no last chunk: the client can tell
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{kit.url}/stream", params={"n": 2, "end": "false"},
                     timeout=10).content


def test_head_of_a_streamed_route_has_no_body(kit):
    s = connect(kit.port)
    s.sendall(b"HEAD /stream?n=2&size=3 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /stream?n=1&size=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    assert data.count(b"HTTP/1.1 200") == 2
    assert data.endswith(b"2\r\nab\r\n0\r\n\r\n")
    s.close()


def test_slow_reader_holds_the_writer_back_not_the_memory(kit):
    """64 MiB answered to a client that reads slowly: the handler waits for
    room instead of queueing the answer, so the service stays small."""
    before = rss_kib(kit.proc.pid)
    s = connect(kit.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /stream?n=1024&size=65536&length=true HTTP/1.1\r\n"
              b"Host: x\r\n\r\n")
    got, peak = 0, before
    time.sleep(0.3)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    got = len(head.split(b"\r\n\r\n", 1)[1])
    while got < 64 << 20:
        chunk = s.recv(1 << 20)
        assert chunk
        got += len(chunk)
        if got % (8 << 20) < len(chunk):
            time.sleep(0.05)
            peak = max(peak, rss_kib(kit.proc.pid))
    s.close()
    assert got == 64 << 20
    assert peak - before < 16 * 1024, (before, peak)


# ---- bodies read as they come, HTTP/1.1 --------------------------------------


def test_body_with_length_comes_in_pieces(kit):
    body = os.urandom(5_000_000)
    r = requests.post(f"{kit.url}/sink", data=body, timeout=30)
    out = r.json()
    assert r.status_code == 200
    assert out["bytes"] == len(body) and out["fnv"] == fnv(body)
    assert out["pieces"] > 1


def test_chunked_body_comes_in_pieces(kit):
    body = os.urandom(3_000_000)

    def gen():
        for i in range(0, len(body), 100_000):
            yield body[i:i + 100_000]

    r = requests.post(f"{kit.url}/sink", data=gen(), timeout=30)
    out = r.json()
    assert out["bytes"] == len(body) and out["fnv"] == fnv(body)


def test_slow_handler_holds_the_client_back_not_the_memory(kit):
    """The handler takes a piece every 20 ms: the server stops reading and
    TCP holds the client back, instead of the body piling up."""
    before = rss_kib(kit.proc.pid)
    body = os.urandom(16 << 20)
    r = requests.post(f"{kit.url}/sink", params={"delay_ms": 20},
                      data=body, timeout=60 * SLOW)
    after = rss_kib(kit.proc.pid)
    assert r.json()["fnv"] == fnv(body)
    assert after - before < 8 * 1024, (before, after)


def test_body_past_its_limit_mid_stream_is_413_and_closes(kit):
    s = connect(kit.port)
    s.sendall(b"POST /sink-small HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(4):
        s.sendall(b"8000\r\n" + b"x" * 0x8000 + b"\r\n")
    data = read_until_closed(s)
    r = one_response(data)
    assert r.status == 413
    assert r.header("Connection") == "close"


def test_declared_length_past_the_limit_is_refused_before_the_handler(kit):
    r = requests.post(f"{kit.url}/sink-small", data=b"x" * 200_000, timeout=10)
    assert r.status_code == 413


def test_answer_before_the_body_closes_the_connection(kit):
    s = connect(kit.port)
    s.sendall(b"POST /sink?early=true HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 1000000\r\n\r\n" + b"x" * 1000)
    r = one_response(read_until_closed(s))
    assert r.status == 403
    assert r.header("Connection") == "close"


def test_stalled_body_reaches_the_handler_as_a_timeout(kit):
    s = connect(kit.port)
    s.sendall(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
              b"only some")
    r = one_response(read_until_closed(s, timeout=10 * SLOW))
    assert r.status == 400
    assert "timed out" in r.json()["detail"]


def test_client_gone_mid_body_leaves_the_server_well(kit):
    s = connect(kit.port)
    s.sendall(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
              + b"x" * 5000)
    time.sleep(0.1)
    s.close()
    time.sleep(0.1)
    r = requests.post(f"{kit.url}/sink", data=b"abc", timeout=10)
    assert r.json()["bytes"] == 3


def test_full_duplex_echo_over_http1(kit):
    """Each piece comes back before the next is sent."""
    s = connect(kit.port)
    s.sendall(b"POST /echo-stream HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    data = b""
    for i in range(5):
        piece = f"piece-{i};".encode()
        s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        while piece not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    s.sendall(b"0\r\n\r\n")
    data += read_until_closed(s)
    assert data.endswith(b"0\r\n\r\n")


def test_small_body_sent_with_its_head_is_one_piece(kit):
    r = requests.post(f"{kit.url}/sink", data=b"hello", timeout=10)
    assert r.json() == {"pieces": 1, "bytes": 5, "fnv": fnv(b"hello")}


# ---- HTTP/2 --------------------------------------------------------------------


@pytest.fixture
def h2c(kit):
    c = H2(kit.port)
    yield c
    c.close()


def test_h2_streamed_answer_has_no_length(h2c):
    status, headers, body = h2c.get("/stream?n=3&size=5&trailer=true")
    assert status == 200
    assert "content-length" not in headers
    assert body == letters(15)


def test_h2_trailers_arrive(kit):
    c = H2(kit.port)
    import h2.events
    sid = c.request("GET", "/stream?n=2&size=4&trailer=true")
    got = {}
    c.sock.settimeout(10 * SLOW)
    while "t" not in got:
        data = c.sock.recv(65536)
        assert data
        for ev in c.conn.receive_data(data):
            if isinstance(ev, h2.events.TrailersReceived):
                got["t"] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                c.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
        c.flush()
    assert got["t"]["x-pieces"] == "done"
    c.close()


def test_h2_cut_short_answer_is_reset(h2c):
    sid = h2c.request("GET", "/stream?n=2&size=3&end=false")
    deadline = time.monotonic() + 10 * SLOW
    while sid not in h2c.resets and time.monotonic() < deadline:
        h2c.pump()
    assert h2c.resets.get(sid) == 2  # INTERNAL_ERROR


def test_h2_body_comes_in_pieces_with_flow_control(h2c):
    body = os.urandom(4_000_000)
    sid = h2c.request("POST", "/sink?delay_ms=2", body=body)
    status, _, out = h2c.wait(sid, timeout=60)
    out = json.loads(out)
    assert status == 200
    assert out["bytes"] == len(body) and out["fnv"] == fnv(body)


def test_h2_full_duplex_echo(h2c):
    sid = h2c.request("POST", "/echo-stream", end=False)
    for i in range(5):
        piece = f"piece-{i};".encode()
        h2c.send_body(sid, piece, end=False)
        deadline = time.monotonic() + 10 * SLOW
        while piece not in h2c.streams[sid]["body"]:
            assert time.monotonic() < deadline, h2c.streams[sid]
            h2c.pump()
    h2c.conn.end_stream(sid)
    h2c.flush()
    status, _, body = h2c.wait(sid)
    assert status == 200
    assert body == b"".join(f"piece-{i};".encode() for i in range(5))


def test_h2_body_past_its_limit_is_413(h2c):
    sid = h2c.request("POST", "/sink-small", body=b"y" * 150_000)
    status, _, _ = h2c.wait(sid)
    assert status == 413


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_h2c_big_answer_to_a_fast_reader_is_whole(kit):
    """Regression: when the socket took every queued frame at once, no write
    completion came back to ask nghttp2 for the rest, and a download over
    h2c stopped at the first 256 KiB cap (curl saw 768 KiB of 1 MiB)."""
    for path in ("/big?kb=8192", "/stream?n=128&size=65536"):
        out = subprocess.run(
            ["curl", "-s", "--http2-prior-knowledge", "--max-time",
             str(int(20 * SLOW)), "-o", "/dev/null", "-w", "%{size_download}",
             kit.url + path], capture_output=True, text=True, timeout=30 * SLOW)
        assert out.stdout == str(8 << 20), (path, out)


def test_streams_both_ways_over_tls(tmp_path):
    """Over HTTPS the pieces go through TLS records and the same out-queue:
    a streamed answer, a body read in pieces, and an echo, over HTTP/1.1
    and over h2 chosen by ALPN."""
    import ssl
    from conftest import tls_args, write_cert
    s = Service("kitchen", "--workers", "1", *tls_args(write_cert(tmp_path)))
    ca = str(tmp_path / "cert.pem")
    try:
        r = requests.get(f"{s.url}/stream", params={"n": 64, "size": 65536},
                         verify=ca, timeout=30)
        assert len(r.content) == 64 * 65536
        body = os.urandom(3_000_000)
        r = requests.post(f"{s.url}/sink", data=body, verify=ca, timeout=30)
        assert r.json()["fnv"] == fnv(body)
        r = requests.post(f"{s.url}/echo-stream", data=body, verify=ca,
                          timeout=30)
        assert r.content == body
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        c = H2(s.port, tls_ctx=ctx)
        try:
            sid = c.request("POST", "/echo-stream", body=body[:1_000_000])
            status, _, echoed = c.wait(sid, timeout=30)
            assert status == 200 and echoed == body[:1_000_000]
        finally:
            c.close()
    finally:
        s.check_clean_exit()
