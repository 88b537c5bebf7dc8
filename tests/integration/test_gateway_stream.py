"""Bodies stream through microc-gateway both ways without being held whole:
large downloads and uploads with the gateway's memory staying flat, chunked
uploads, answers that break off upstream, and body limits enforced on the
way, over HTTP/1.1 and HTTP/2 clients. (gRPC streams through the gateway
are in test_gateway_grpc.py.)"""

import os
import socket
import time

import pytest
import requests

from conftest import (SLOW, Service, Upstream, connect, metric, read_until_closed,
                      rss_kib, wait_for)
from test_h2 import H2
from test_stream import fnv, letters

ROUTES = """
routes:
  - prefix: /k/
    service: kitchen
    rewrite: /
    auth: public
    timeout: 5s
    max_body: 1g
  - prefix: /small/
    service: kitchen
    rewrite: /
    auth: public
    max_body: 100k
  - prefix: /raw/
    service: raw
    strip_prefix: true
    auth: public
    timeout: 2s
    retries: 0
  - prefix: /retried/
    service: raw
    strip_prefix: true
    auth: public
    timeout: 1s
    retries: 2
"""


@pytest.fixture(scope="module")
def sgw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sgw")
    reg = Service("microc-registry", "--data-dir", str(tmp / "reg"))
    kit = Service("kitchen", "--workers", "1", "--registry", reg.url,
                  "--check-interval", "1s")
    raw = Upstream()
    r = requests.put(f"{reg.url}/v1/agent/service/register", json={
        "ID": "raw-1", "Name": "raw", "Address": "127.0.0.1", "Port": raw.port,
        "Check": {"TTL": "1h", "Status": "passing"}})
    assert r.status_code == 200

    def passing():
        r = requests.get(f"{reg.url}/v1/health/service/kitchen?passing")
        return len(r.json()) == 1

    wait_for(passing, what="kitchen passing")
    routes = tmp / "routes.yaml"
    routes.write_text(ROUTES)
    gw = Service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                 "--workers", "1")
    gw.raw = raw
    yield gw
    gw.check_clean_exit()
    kit.check_clean_exit()
    raw.close()
    reg.check_clean_exit()


def test_download_streams_through_with_flat_memory(sgw):
    """64 MiB of answer to a client that reads slowly: the gateway holds a
    window of it, not the answer."""
    before = rss_kib(sgw.proc.pid)
    peak = before
    got = 0
    h = 0
    with requests.get(f"{sgw.url}/k/stream", params={"n": 1024, "size": 65536},
                      stream=True, timeout=60 * SLOW) as r:
        assert r.status_code == 200
        assert r.headers["Transfer-Encoding"] == "chunked"
        for i, chunk in enumerate(r.iter_content(1 << 20)):
            if i == 0:
                assert chunk[:26] == letters(26)
            got += len(chunk)
            if i % 8 == 0:
                time.sleep(0.02)
                peak = max(peak, rss_kib(sgw.proc.pid))
    assert got == 64 << 20
    assert peak - before < 16 * 1024, (before, peak)


def test_answer_with_length_keeps_it(sgw):
    r = requests.get(f"{sgw.url}/k/stream",
                     params={"n": 40, "size": 65536, "length": "true"}, timeout=30)
    assert r.headers["Content-Length"] == str(40 * 65536)
    assert len(r.content) == 40 * 65536


def test_upload_streams_through_with_flat_memory(sgw):
    before = rss_kib(sgw.proc.pid)
    body = os.urandom(48 << 20)
    r = requests.post(f"{sgw.url}/k/sink", data=body, timeout=60 * SLOW)
    after = rss_kib(sgw.proc.pid)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["bytes"] == len(body) and out["fnv"] == fnv(body)
    assert out["pieces"] > 10  # it came in pieces, not whole
    assert after - before < 16 * 1024, (before, after)


def test_chunked_upload_streams_through(sgw):
    body = os.urandom(3 << 20)

    def gen():
        for i in range(0, len(body), 50_000):
            yield body[i:i + 50_000]

    r = requests.post(f"{sgw.url}/k/sink", data=gen(), timeout=30 * SLOW)
    assert r.json()["fnv"] == fnv(body)


def test_small_body_is_passed_whole(sgw):
    r = requests.post(f"{sgw.url}/k/sink", data=b"hello", timeout=10)
    assert r.json() == {"pieces": 1, "bytes": 5, "fnv": fnv(b"hello")}


def test_body_past_the_route_cap_midway_is_413(sgw):
    s = connect(sgw.port)
    s.sendall(b"POST /small/sink HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(8):
            s.sendall(b"8000\r\n" + b"z" * 0x8000 + b"\r\n")
    except OSError:
        pass  # the gateway may close before all of it is sent
    data = read_until_closed(s, timeout=10 * SLOW)
    assert data.startswith(b"HTTP/1.1 413"), data[:200]


def test_answer_breaking_off_upstream_breaks_off_here(sgw):
    """A long answer that stops midway: the client gets what came, then the
    connection closes without the last chunk, so it can tell."""
    s = connect(sgw.port)
    s.sendall(b"GET /raw/breakoff HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_until_closed(s, timeout=10 * SLOW)
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Transfer-Encoding: chunked" in head
    assert len(body) > 0x10000
    assert not body.endswith(b"0\r\n\r\n")
    # and the gateway goes on serving
    assert requests.get(f"{sgw.url}/k/stream?n=1&size=3", timeout=10).content == b"abc"


def test_short_answer_breaking_off_is_502(sgw):
    r = requests.get(f"{sgw.url}/raw/half", timeout=10)
    assert r.status_code == 502


def test_h2_client_download_and_upload_through(sgw):
    c = H2(sgw.port)
    try:
        sid = c.request("GET", "/k/stream?n=64&size=65536")
        status, headers, body = c.wait(sid, timeout=30)
        assert status == 200 and len(body) == 64 * 65536
        assert "content-length" not in headers
        payload = os.urandom(3 << 20)
        sid = c.request("POST", "/k/sink", body=payload)
        status, _, out = c.wait(sid, timeout=30)
        assert status == 200
        import json
        assert json.loads(out)["fnv"] == fnv(payload)
    finally:
        c.close()


def test_route_timeout_bounds_the_retries_too(sgw):
    """timeout: 1s with two retries, in front of an instance that takes 3 s:
    the first attempt uses up the route's time, so no retry is started and
    the answer is a 504."""
    def retries():
        text = requests.get(f"{sgw.url}/metrics", timeout=10).text
        return metric(text, "microc_upstream_retries_total", service="raw") or 0

    before = retries()
    r = requests.get(f"{sgw.url}/retried/slow?ms=3000", timeout=20)
    assert r.status_code == 504
    assert retries() == before


def test_h1_upstream_full_duplex_echo(sgw):
    """An upstream that answers while the body is still coming (kitchen's
    /echo-stream sends each piece back as it reads it): the gateway keeps
    sending the body after the answer's head, so every piece comes back
    before the client has sent the next one and the exchange never stalls."""
    s = connect(sgw.port)
    s.settimeout(10 * SLOW)
    s.sendall(b"POST /k/echo-stream HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    got = b""
    sent = b""
    for i in range(12):
        piece = bytes([65 + i]) * 100_000
        sent += piece
        s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        # the echo of this piece comes back before the next is sent
        deadline = time.monotonic() + 10 * SLOW
        while got.count(bytes([65 + i])) < len(piece):
            assert time.monotonic() < deadline, (i, len(got))
            data = s.recv(1 << 20)
            assert data, (i, len(got))
            got += data
    s.sendall(b"0\r\n\r\n")
    while not got.endswith(b"0\r\n\r\n"):
        data = s.recv(1 << 20)
        assert data
        got += data
    head, body = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    out = b""
    while True:  # de-chunk
        size, rest = body.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    assert out == sent
    s.close()
