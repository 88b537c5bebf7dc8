"""HTTP/2 on every microc port: h2c with prior knowledge, and h2 over TLS
chosen by ALPN. The client is hyper-h2 (python3-h2) on raw sockets, and
h2load (nghttp2-client) for many streams at once."""

import json
import signal
import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
import requests

from conftest import SLOW, Service, read_until_closed, tls_args, write_cert


class H2:
    """A blocking HTTP/2 client connection."""

    def __init__(self, port, tls_ctx=None):
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
        if tls_ctx:
            s = tls_ctx.wrap_socket(s, server_hostname="localhost")
            assert s.selected_alpn_protocol() == "h2"
        self.sock = s
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.goaway = None
        self.resets = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, headers=(), body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":path", path), (":scheme", "http"),
              (":authority", "localhost"), *headers]
        self.conn.send_headers(sid, hs, end_stream=body is None and end)
        if body is not None:
            self.send_body(sid, body, end)
        self.flush()
        self.streams[sid] = {"headers": None, "body": b"", "done": False}
        return sid

    def send_body(self, sid, body, end=True):
        view = memoryview(body)
        while view:
            window = self.conn.local_flow_control_window(sid)
            size = min(window, self.conn.max_outbound_frame_size, len(view))
            if size <= 0:
                self.pump(1)
                continue
            self.conn.send_data(sid, view[:size].tobytes())
            view = view[size:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def pump(self, timeout=5):
        self.sock.settimeout(timeout * SLOW)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLError, ConnectionResetError):
            return False
        if not data:
            return False
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                self.streams[ev.stream_id]["headers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                self.streams[ev.stream_id]["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.streams[ev.stream_id]["done"] = True
            elif isinstance(ev, h2.events.StreamReset):
                self.resets[ev.stream_id] = ev.error_code
                if ev.stream_id in self.streams:
                    self.streams[ev.stream_id]["done"] = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        self.flush()
        return True

    def wait(self, sid, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while not self.streams[sid]["done"]:
            if time.monotonic() > deadline or not self.pump():
                raise AssertionError(f"stream {sid} not answered: {self.streams[sid]}")
        st = self.streams[sid]
        return int(st["headers"][":status"]), st["headers"], st["body"]

    def get(self, path, **kw):
        return self.wait(self.request("GET", path, **kw))

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()


@pytest.fixture(scope="module")
def kitchen2():
    s = Service("kitchen", "--workers", "2")
    yield s
    s.check_clean_exit()


@pytest.fixture
def conn(hello):
    c = H2(hello.port)
    yield c
    c.close()


def test_h2c_prior_knowledge_get(conn):
    status, headers, body = conn.get("/hello/h2")
    assert status == 200
    assert json.loads(body) == {"message": "Hello, h2!"}
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert len(headers["x-request-id"]) == 32
    assert headers["traceparent"].startswith("00-")
    assert all(k == k.lower() for k in headers)


def test_many_streams_at_once_on_one_connection(conn):
    sids = [conn.request("GET", f"/hello/s{i}") for i in range(50)]
    for i, sid in enumerate(sids):
        status, _, body = conn.wait(sid)
        assert status == 200 and json.loads(body) == {"message": f"Hello, s{i}!"}


def test_post_validation_and_problems(conn):
    ct = [("content-type", "application/json")]
    status, _, body = conn.wait(conn.request("POST", "/echo", ct,
                                             b'{"message":"m","count":3}'))
    assert status == 200 and json.loads(body)["count"] == 3
    status, headers, body = conn.wait(conn.request("POST", "/echo", ct,
                                                   b'{"message":"","count":0}'))
    assert status == 422 and headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in json.loads(body)["errors"]] == [["body", "message"],
                                                              ["body", "count"]]
    status, _, body = conn.get("/nowhere")
    assert status == 404 and json.loads(body)["status"] == 404
    status, headers, _ = conn.wait(conn.request("DELETE", "/hello/x"))
    assert status == 405 and "GET" in headers["allow"]


def test_head_has_length_and_no_body(conn):
    status, headers, body = conn.wait(conn.request("HEAD", "/hello/head"))
    assert status == 200 and body == b""
    assert int(headers["content-length"]) > 0


def test_body_over_the_limit_is_refused_before_it_is_read(kitchen2):
    c = H2(kitchen2.port)
    try:
        # content-length over the route's 1 KiB: answered at the head, the
        # rest of the body refused with RST_STREAM(NO_ERROR)
        sid = c.request("POST", "/upload", [("content-length", "100000")], end=False)
        status, _, body = c.wait(sid)
        assert status == 413 and json.loads(body)["status"] == 413
        # no content-length: refused once past the cap
        sid = c.request("POST", "/upload", (), body=b"x" * 5000)
        status, _, _ = c.wait(sid)
        assert status == 413
        # the connection goes on
        status, _, _ = c.get("/items/1")
        assert status in (200, 404, 422)
    finally:
        c.close()


def test_large_upload_and_download(kitchen2):
    c = H2(kitchen2.port)
    try:
        status, _, body = c.wait(c.request("PUT", "/upload", (), body=b"y" * (3 << 20)))
        assert status == 200, body
        status, _, body = c.get("/big?kb=4096")
        assert status == 200 and len(body) == 4096 * 1024
    finally:
        c.close()


def test_client_reset_cancels_the_handler_and_the_server_goes_on(kitchen2):
    c = H2(kitchen2.port)
    try:
        sid = c.request("GET", "/sleep?ms=30000")
        time.sleep(0.2)
        c.conn.reset_stream(sid)
        c.flush()
        status, _, _ = c.get("/sleep?ms=1")
        assert status == 200
    finally:
        c.close()
    text = requests.get(f"{kitchen2.url}/metrics").text
    inflight = [l for l in text.splitlines() if l.startswith("http_requests_in_flight ")]
    assert inflight and float(inflight[0].split()[1]) <= 1


def test_too_many_headers_is_431(conn):
    headers = [(f"x-h{i}", "v") for i in range(150)]
    status, _, _ = conn.get("/hello/x", headers=headers)
    assert status == 431


def test_garbage_after_the_preface_gets_goaway(hello):
    with socket.create_connection(("127.0.0.1", hello.port), timeout=5 * SLOW) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x99\x00\x00\x00\x00\x00junk")
        data = read_until_closed(s)
    assert b"\x07" in data[:200] or data  # a GOAWAY (type 7) or at least SETTINGS
    assert requests.get(f"{hello.url}/hello/after").status_code == 200


def test_h2_over_tls_by_alpn(tmp_path):
    write_cert(tmp_path)
    svc = Service("hello", *tls_args(tmp_path), "--workers", "1")
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        c = H2(svc.port, tls_ctx=ctx)
        try:
            sids = [c.request("GET", f"/hello/t{i}") for i in range(10)]
            for i, sid in enumerate(sids):
                status, _, body = c.wait(sid)
                assert status == 200 and json.loads(body)["message"] == f"Hello, t{i}!"
        finally:
            c.close()
        # HTTP/1.1 clients on the same port still work
        r = requests.get(f"{svc.url}/hello/one", verify=str(tmp_path / "cert.pem"))
        assert r.status_code == 200
    finally:
        svc.check_clean_exit()


def test_sigterm_sends_goaway_and_finishes_streams(service):
    # nghttp, since hyper-h2 takes a GOAWAY as the end of every stream
    k = service("kitchen", "--workers", "1")
    p = subprocess.Popen(["nghttp", "-v", f"http://127.0.0.1:{k.port}/sleep?ms=700"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.3)
    k.proc.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20 * SLOW)
    assert ":status: 200" in out, out
    assert '"slept_ms":700' in out, out
    assert "recv GOAWAY" in out and "NO_ERROR" in out, out
    assert k.stop() == 0


def test_idle_h2_connection_is_closed(service):
    k = service("hello", "--workers", "1", "--idle-timeout", "1s")
    c = H2(k.port)
    try:
        assert c.get("/hello/i")[0] == 200
        deadline = time.monotonic() + 6 * SLOW
        alive = True
        while alive and time.monotonic() < deadline:
            alive = c.pump(1) or c.goaway is None
            if c.goaway is not None:
                break
        assert c.goaway is not None or not alive
    finally:
        c.close()


def test_h2load_many_clients_and_streams(hello):
    r = subprocess.run(["h2load", "-n", "2000", "-c", "8", "-m", "16",
                        f"http://127.0.0.1:{hello.port}/hello/load"],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert "2000 succeeded, 0 failed, 0 errored" in r.stdout, r.stdout
    assert "status codes: 2000 2xx" in r.stdout, r.stdout


def test_gateway_takes_h2c_clients(tmp_path):
    reg = Service("microc-registry", "--data-dir", str(tmp_path / "reg"))
    hello = Service("hello", "--workers", "1", "--registry", reg.url,
                    "--check-interval", "1s")
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - {prefix: /api/, service: hello, rewrite: /, "
                      "auth: public}\n")
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline:
        if requests.get(f"{reg.url}/v1/health/service/hello?passing").json():
            break
        time.sleep(0.1)
    gw = Service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                 "--workers", "1")
    try:
        c = H2(gw.port)
        try:
            sids = [c.request("GET", f"/api/hello/g{i}") for i in range(20)]
            for i, sid in enumerate(sids):
                status, headers, body = c.wait(sid)
                assert status == 200, body
                assert json.loads(body) == {"message": f"Hello, g{i}!"}
        finally:
            c.close()
    finally:
        gw.check_clean_exit()
        hello.check_clean_exit()
        reg.check_clean_exit()
