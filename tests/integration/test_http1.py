"""HTTP/1.1 as a client on the wire sees it: keep-alive, pipelining,
chunked bodies, 100-continue, HTTP/1.0, and every malformed request the
server must refuse with a clear answer and a closed connection."""

import json
import time

import pytest
import requests

from conftest import (SLOW, connect, exchange, one_response, parse_responses,
                      read_until_closed)


def get(path, extra=b"", version=b"HTTP/1.1"):
    return b"GET " + path + b" " + version + b"\r\nHost: t\r\n" + extra + b"\r\n"


def post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def closes_after(data_sent, port, status, detail_has=None):
    """Sends a request that must be refused: one problem answer with
    Connection: close, then the server closes."""
    data = exchange(port, data_sent)
    r = one_response(data)
    assert r.status == status, r
    assert r.header("connection") == "close"
    assert r.header("content-type") == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    if detail_has:
        assert detail_has in body["detail"], body
    return r


# ---- keep-alive and pipelining -----------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(hello):
    with connect(hello.port) as s:
        for i in range(20):
            s.sendall(get(b"/hello/k%d" % i))
            data = b""
            while b"}" not in data:
                data += s.recv(4096)
            r = one_response(data)
            assert r.json() == {"message": f"Hello, k{i}!"}
            assert r.header("connection") is None


def test_pipelined_requests_are_answered_in_order(hello):
    reqs = b"".join(get(b"/hello/p%d" % i) for i in range(10))
    reqs += post(b"/echo", b'{"message":"last","count":1}')
    reqs += get(b"/hello/final", b"Connection: close\r\n")
    data = exchange(hello.port, reqs)
    rs = parse_responses(data)
    assert len(rs) == 12
    for i in range(10):
        assert rs[i].json() == {"message": f"Hello, p{i}!"}
    assert rs[10].json()["message"] == "last"
    assert rs[11].json() == {"message": "Hello, final!"}
    assert rs[11].header("connection") == "close"


def test_pipelined_requests_split_at_odd_places(hello):
    reqs = b"".join(get(b"/hello/s%d" % i) for i in range(5)) + get(
        b"/hello/end", b"Connection: close\r\n")
    with connect(hello.port) as s:
        for i in range(0, len(reqs), 7):
            s.sendall(reqs[i:i + 7])
            time.sleep(0.001)
        rs = parse_responses(read_until_closed(s))
    assert [r.json()["message"] for r in rs] == [
        "Hello, s0!", "Hello, s1!", "Hello, s2!", "Hello, s3!", "Hello, s4!", "Hello, end!"]


def test_connection_close_is_honoured(hello):
    data = exchange(hello.port, get(b"/hello/x", b"Connection: close\r\n"))
    r = one_response(data)
    assert r.status == 200
    assert r.header("connection") == "close"


# ---- bodies ------------------------------------------------------------------


def test_chunked_request_body(hello):
    body = b'{"message":"chunky","count":2}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:5], body[5:17], body[17:]))
    req = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
    r = one_response(exchange(hello.port, req))
    assert r.status == 200
    assert r.json()["message"] == "chunky"


def test_chunked_body_with_trailers_and_extensions(hello):
    body = b'{"message":"t","count":2}'
    req = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           + b"%x;ext=1\r\n" % len(body) + body + b"\r\n0\r\nX-Trailer: yes\r\n\r\n")
    r = one_response(exchange(hello.port, req))
    assert r.status == 200


def test_expect_100_continue(hello):
    body = b'{"message":"cont","count":1}'
    with connect(hello.port) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        interim = s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        rest = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):] + read_until_closed(s)
    r = one_response(rest)
    assert r.status == 200
    assert r.json()["message"] == "cont"


def test_expect_100_continue_refused_early_when_too_large(kitchen):
    # /upload takes at most 1024 bytes: answer 413 at once, never 100.
    with connect(kitchen.port) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5000\r\n\r\n")
        r = one_response(read_until_closed(s))
    assert r.status == 413


def test_unknown_expectation_is_417(hello):
    closes_after(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n"
                 b"Content-Length: 0\r\n\r\n", hello.port, 417)


def test_http10_closes_by_default_and_keeps_alive_on_request(hello):
    data = exchange(hello.port, b"GET /hello/old HTTP/1.0\r\n\r\n")
    r = one_response(data)
    assert r.status == 200
    assert r.json() == {"message": "Hello, old!"}
    assert r.header("connection") == "close"
    with connect(hello.port) as s:
        s.sendall(b"GET /hello/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while b"}" not in data:
            data += s.recv(4096)
        r = one_response(data)
        assert r.header("connection") == "keep-alive"
        s.sendall(b"GET /hello/b HTTP/1.0\r\n\r\n")
        r = one_response(read_until_closed(s))
        assert r.json() == {"message": "Hello, b!"}


def test_absolute_form_target(hello):
    r = one_response(exchange(hello.port, b"GET http://t/hello/abs HTTP/1.1\r\nHost: t\r\n"
                                          b"Connection: close\r\n\r\n"))
    assert r.json() == {"message": "Hello, abs!"}


# ---- limits --------------------------------------------------------------------


def test_headers_too_large_is_431(hello):
    closes_after(get(b"/hello/x", b"X-Big: " + b"a" * 20000 + b"\r\n"), hello.port, 431)


def test_request_line_too_large_is_431(hello):
    closes_after(get(b"/hello/" + b"a" * 20000), hello.port, 431)


def test_too_many_headers_is_431(hello):
    extra = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    closes_after(get(b"/hello/x", extra), hello.port, 431)


def test_body_over_limit_is_413_without_reading_it(kitchen):
    # The server answers after the head: the client never sends the body.
    with connect(kitchen.port) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        r = one_response(read_until_closed(s))
    assert r.status == 413
    assert r.header("connection") == "close"


def test_body_at_the_route_limit_is_accepted(kitchen):
    r = requests.post(f"{kitchen.url}/upload", data=b"x" * 1024)
    assert r.json() == {"bytes": 1024}
    r = requests.put(f"{kitchen.url}/upload", data=b"x" * (3 << 20))
    assert r.json() == {"bytes": 3 << 20}


def test_chunked_body_over_limit_is_413(kitchen):
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    req = (b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           + chunk * 3 + b"0\r\n\r\n")
    closes_after(req, kitchen.port, 413)


def test_default_body_limit_applies(hello):
    body = b'{"message":"' + b"x" * (1 << 20) + b'","count":1}'
    closes_after(post(b"/echo", body), hello.port, 413)


# ---- request smuggling and malformed framing ------------------------------------


@pytest.mark.parametrize("name,raw", [
    ("content-length with transfer-encoding",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("differing content-lengths",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
    ("content-length list",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 5\r\n\r\nabcde"),
    ("bad content-length",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n"),
    ("bad chunk size",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
    ("chunk size overflow",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
    ("transfer-encoding not ending in chunked",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
    ("obs-fold",
     b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n"),
    ("whitespace before colon",
     b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX-Space : a\r\n\r\n"),
    ("NUL in a value",
     b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX-Nul: a\x00b\r\n\r\n"),
    ("CR in a value",
     b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX-Cr: a\rb\r\n\r\n"),
    ("bare CR ending the head early",  # a fuzzer find: llhttp ended the head
     b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\rGET /x HTTP/1.1\r\n\r\n"),
    ("bare CR before a header's end",
     b"GET /hello/x HTTP/1.1\r\nHost:\r \nX-A: b\r\n\r\n"),
    ("bare LF line ending",
     b"GET /hello/x HTTP/1.1\nHost: t\n\n"),
    ("invalid method",
     b"G@T /hello/x HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("space in target",
     b"GET /hello/a b HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("missing host in HTTP/1.1",
     b"GET /hello/x HTTP/1.1\r\n\r\n"),
    ("two host headers",
     b"GET /hello/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("invalid header name",
     b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX(bad): a\r\n\r\n"),
    ("chunked in HTTP/1.0",
     b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
])
def test_malformed_requests_are_400_and_closed(hello, name, raw):
    closes_after(raw, hello.port, 400)


def test_http2_preface_after_a_request_is_refused(hello):
    # h2c starts a connection (see test_h2.py); mid-connection it is not HTTP/1.1
    data = exchange(hello.port, get(b"/hello/first") + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    rs = parse_responses(data)
    assert rs[0].status == 200 and rs[1].status in (400, 505)


def test_unsupported_version_is_505(hello):
    closes_after(b"GET /hello/x HTTP/3.0\r\nHost: t\r\n\r\n", hello.port, 505)


def test_garbage_gets_an_answer_not_a_crash(hello):
    for raw in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS hello
                b"\r\n\r\n\r\n", b"GET\r\n\r\n", b"\xff\xfe\xfd\r\n\r\n"):
        data = exchange(hello.port, raw, timeout=2)
        if data:
            assert one_response(data).status == 400
    assert requests.get(f"{hello.url}/hello/still").status_code == 200


def test_server_answers_after_every_refusal(hello):
    r = requests.get(f"{hello.url}/hello/alive")
    assert r.json() == {"message": "Hello, alive!"}


def test_upgrade_h2c_is_ignored_and_keep_alive_goes_on(hello):
    # What curl --http2 sends on plain http: we answer in HTTP/1.1.
    req = (b"GET /hello/up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
           + get(b"/hello/next", b"Connection: close\r\n"))
    rs = parse_responses(exchange(hello.port, req))
    assert [r.status for r in rs] == [200, 200]
    assert rs[1].json() == {"message": "Hello, next!"}


def test_chunked_trailers_leave_the_request_intact(hello):
    # Regression: trailers used to be stored over the request's headers.
    body = b'{"message":"t","count":2}'
    req = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           b"X-Request-Id: trailer-test\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + b"%x\r\n" % len(body) + body +
           b"\r\n0\r\nX-Checksum: " + b"a" * 3000 + b"\r\n\r\n")
    r = one_response(exchange(hello.port, req))
    assert r.status == 200
    assert r.header("x-request-id") == "trailer-test"


def test_connect_is_refused(hello):
    closes_after(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                 hello.port, 400)
