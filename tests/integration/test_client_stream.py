"""The outbound client streaming bodies both ways, driven through kitchen's
/fetch (HTTP/1.1) and /call (by name, HTTP/1.1 and HTTP/2) routes with
stream=1 (the answer read in pieces with mc_http_read) and upload=N (N
bytes from a body source), against real peers."""

import zlib

import requests

from conftest import SLOW, LoopbackServer, pattern, rss_kib


def fetch(svc, url, timeout=120, **params):
    params["url"] = url
    r = requests.get(f"{svc.url}/fetch", params=params, timeout=timeout * SLOW)
    return r.status_code, r.json()


def test_small_answer_streamed_from_a_microc_service(kitchen, hello):
    code, out = fetch(kitchen, f"{hello.url}/hello/stream", stream=1)
    assert code == 200 and out["status"] == 200, out
    assert out["read_error"] is None
    assert out["start"] == '{"message":"Hello, stream!"}'
    assert out["bytes"] == len(out["start"])


def test_big_answer_streamed_in_pieces_keeps_memory_small(service, upstream):
    s = service("kitchen", "--workers", "1")
    fetch(s, f"{upstream.url}/ok")  # warm up: pool, arenas, stacks
    before = rss_kib(s.proc.pid)
    n = 50 * 1024 * 1024
    code, out = fetch(s, f"{upstream.url}/stream?kb={n // 1024}", stream=1)
    after = rss_kib(s.proc.pid)
    assert out["error"] is None and out["read_error"] is None, out
    assert out["bytes"] == n
    assert out["crc"] == zlib.crc32(pattern(n))
    assert out["pieces"] > 100
    assert after - before < 30 * 1024, (before, after)
    # read to the end: the connection went back to the pool and is reused
    code, out = fetch(s, f"{upstream.url}/ok", stream=1)
    assert out["reused"] >= 2 and out["bytes"] == 11, out


def test_streamed_chunked_answer_and_slow_reader(kitchen, upstream):
    n = 2 * 1024 * 1024
    code, out = fetch(kitchen, f"{upstream.url}/stream?kb={n // 1024}&chunked=1",
                      stream=1, read_delay_ms=5)
    assert out["read_error"] is None, out
    assert out["bytes"] == n and out["crc"] == zlib.crc32(pattern(n))


def test_truncated_and_reset_answers_end_the_read_with_an_error(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/cut_chunked", stream=1)
    assert out["status"] == 200 and out["read_error"] in ("MC_ECLOSED", "MC_EPROTO"), out
    assert out["start"].startswith("hello")
    code, out = fetch(kitchen, f"{upstream.url}/half", stream=1)
    assert out["read_error"] == "MC_ECLOSED" and out["start"] == "half", out
    code, out = fetch(kitchen, f"{upstream.url}/reset_mid", stream=1)
    assert out["status"] == 200
    assert out["read_error"] in ("MC_ECONNRESET", "MC_ECLOSED"), out
    assert 0 < out["bytes"] < 1024 * 1024


def test_stalled_body_times_out_per_piece(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/stall", stream=1, timeout_ms=300)
    assert out["status"] == 200 and out["start"] == "0123456789", out
    assert out["read_error"] == "MC_ETIMEDOUT"


def test_upload_with_known_length(kitchen, upstream):
    n = 3 * 1024 * 1024 + 17
    code, out = fetch(kitchen, f"{upstream.url}/sink", method="POST", upload=n)
    assert out["error"] is None, out
    seen = __import__("json").loads(out["body"])
    assert seen == {"bytes": n, "crc": zlib.crc32(pattern(n)), "chunked": False}


def test_chunked_upload_of_several_mib(kitchen, upstream):
    n = 6 * 1024 * 1024 + 5
    code, out = fetch(kitchen, f"{upstream.url}/sink", method="POST", upload=n,
                      chunked=1, piece=50000)
    assert out["error"] is None, out
    seen = __import__("json").loads(out["body"])
    assert seen == {"bytes": n, "crc": zlib.crc32(pattern(n)), "chunked": True}
    # and to a microc server, which reads chunked bodies itself
    code, out = fetch(kitchen, f"{kitchen.url}/upload", method="PUT",
                      upload=3 * 1024 * 1024, chunked=1)
    assert out["error"] is None and out["status"] == 200, out
    assert out["body"] == '{"bytes":3145728}'


def test_interim_answer_does_not_stop_the_upload(kitchen, upstream):
    n = 2 * 1024 * 1024
    code, out = fetch(kitchen, f"{upstream.url}/continue", method="POST", upload=n)
    assert out["error"] is None and out["status"] == 200, out
    assert __import__("json").loads(out["body"])["bytes"] == n


def test_upload_and_streamed_answer_together(kitchen, upstream):
    n = 1024 * 1024
    code, out = fetch(kitchen, f"{upstream.url}/sink", method="PUT", upload=n,
                      chunked=1, stream=1)
    assert out["read_error"] is None, out
    seen = __import__("json").loads(out["start"])
    assert seen["bytes"] == n and seen["crc"] == zlib.crc32(pattern(n))


def test_early_answer_stops_the_upload(service, upstream):
    s = service("kitchen", "--workers", "1")
    n = 64 * 1024 * 1024
    for extra in ({}, {"chunked": 1}, {"stream": 1}):
        code, out = fetch(s, f"{upstream.url}/early", method="POST", upload=n,
                          timeout=30, **extra)
        assert out["error"] is None and out["status"] == 200, (extra, out)
        assert out["sent"] < n, out
        assert out.get("body", out.get("start")) == "early"
        assert out["idle"] == 0  # not reused: the body was cut short


def test_source_lying_about_its_length_is_refused(service, upstream):
    s = service("kitchen", "--workers", "1")
    for declare in (99999, 100001):
        code, out = fetch(s, f"{upstream.url}/sink", method="POST", upload=100000,
                          declare=declare, piece=30000)
        assert out["error"] == "MC_EINVAL", (declare, out)
    # the connections were closed, not pooled half-sent; the next call is fine
    code, out = fetch(s, f"{upstream.url}/sink", method="POST", upload=100000)
    assert out["error"] is None and out["idle"] == 1, out
    assert __import__("json").loads(out["body"])["bytes"] == 100000


def test_slow_peer_that_never_answers_an_upload_times_out(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/slow?ms=3000", timeout_ms=200,
                      method="POST", upload=100000, chunked=1)
    assert out["error"] == "MC_ETIMEDOUT"


def test_errors_before_the_head(kitchen, upstream):
    for path, want in {"/close": ("MC_ECLOSED",), "/garbage": ("MC_EPROTO",),
                       "/reset": ("MC_ECONNRESET", "MC_ECLOSED")}.items():
        code, out = fetch(kitchen, f"{upstream.url}{path}", stream=1)
        assert code == 502 and out["error"] in want, (path, out)
    code, out = fetch(kitchen, "http://127.0.0.1:1/", stream=1, method="POST",
                      upload=10)
    assert out["error"] == "MC_ECONNREFUSED"


# ---- by name, over HTTP/1.1 and HTTP/2 ---------------------------------------


class H2Server(LoopbackServer):
    """A hyper-h2 server on raw sockets (h2c, prior knowledge):

      /big?kb=N   N KiB of the pattern, sent as flow control allows, then
                  trailers (grpc-status 0, x-trailer t1)
      /echo       each DATA frame of the request sent back at once; the
                  answer ends, with trailers, when the request does
      /rst_mid    1000 bytes of body, then RST_STREAM (INTERNAL_ERROR)
      /stall      the head and 10 bytes, then nothing

    It notes the streams the client reset."""

    def __init__(self):
        self.resets = []
        self.echoed = 0
        super().__init__()

    def serve(self, sock):
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions
        import urllib.parse
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        out = {}  # stream id -> [pending bytes, whole answer queued]

        def flush():
            for sid, st in list(out.items()):
                try:
                    while st[0]:
                        n = min(conn.local_flow_control_window(sid),
                                conn.max_outbound_frame_size, len(st[0]))
                        if n <= 0:
                            break
                        conn.send_data(sid, bytes(st[0][:n]))
                        del st[0][:n]
                    if not st[0] and st[1]:
                        conn.send_headers(sid, [("grpc-status", "0"), ("x-trailer", "t1")],
                                          end_stream=True)
                        del out[sid]
                except h2.exceptions.StreamClosedError:
                    out.pop(sid, None)

        try:
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        u = urllib.parse.urlsplit(dict(ev.headers)[":path"])
                        q = dict(urllib.parse.parse_qsl(u.query))
                        try:
                            conn.send_headers(ev.stream_id, [(":status", "200"),
                                                             ("content-type", "application/x-test")])
                        except (h2.exceptions.StreamClosedError,
                                h2.exceptions.StreamIDTooLowError):
                            # reset in the same read (and, with a newer
                            # stream opened in it too, already forgotten):
                            # the connection goes on
                            continue
                        if u.path == "/big":
                            out[ev.stream_id] = [bytearray(pattern(int(q["kb"]) * 1024)), True]
                        elif u.path in ("/rst_mid", "/stall"):
                            conn.send_data(ev.stream_id, b"z" * (1000 if u.path == "/rst_mid" else 10))
                            if u.path == "/rst_mid":
                                conn.reset_stream(ev.stream_id, 2)
                        else:
                            out[ev.stream_id] = [bytearray(), ev.stream_ended is not None]
                    elif isinstance(ev, h2.events.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        if ev.stream_id in out:
                            out[ev.stream_id][0] += ev.data
                            self.echoed += len(ev.data)
                    elif isinstance(ev, h2.events.StreamEnded):
                        if ev.stream_id in out:
                            out[ev.stream_id][1] = True
                    elif isinstance(ev, h2.events.StreamReset):
                        self.resets.append(ev.error_code)
                        out.pop(ev.stream_id, None)
                flush()
                sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            sock.close()


class Refuser(LoopbackServer):
    """An HTTP/2 server that processes nothing: each request is answered
    with GOAWAY naming the stream before it as the last one processed, and
    the connection is closed."""

    def __init__(self):
        self.refused = 0
        super().__init__()

    def serve(self, sock):
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        try:
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        self.refused += 1
                        conn.close_connection(last_stream_id=max(ev.stream_id - 2, 0))
                        sock.sendall(conn.data_to_send())
                        return
                sock.sendall(conn.data_to_send())
        except Exception:
            pass
        finally:
            sock.close()


class Named:
    """A registry with hello, an HTTP/2 server (h2py) and a service whose
    instances are an Upstream and a hello (mixed), and a kitchen that calls
    them by name."""

    def __init__(self, tmp_path):
        from conftest import Service, Upstream
        self.registry = Service("microc-registry", "--data-dir", str(tmp_path / "reg"))
        reg = self.registry.url
        self.hello = Service("hello", "--workers", "1", "--registry", reg)
        self.h2 = H2Server()
        self.refuser = Refuser()
        self.upstream = Upstream()
        for sid, name, port in (("h2py-1", "h2py", self.h2.port),
                                ("pair-refuser", "h2pair", self.refuser.port),
                                ("pair-h2py", "h2pair", self.h2.port),
                                ("mixed-up", "mixed", self.upstream.port),
                                ("mixed-hello", "mixed", self.hello.port)):
            r = requests.put(f"{reg}/v1/agent/service/register", json={
                "ID": sid, "Name": name, "Address": "127.0.0.1", "Port": port,
                "Check": {"TTL": "1h", "Status": "passing"}})
            assert r.status_code == 200
        self.kitchen = Service("kitchen", "--workers", "1", "--registry", reg,
                               "--check-interval", "1s")

    def call(self, service, path="/", **params):
        r = requests.get(f"{self.kitchen.url}/call",
                         params={"service": service, "path": path, **params},
                         timeout=60 * SLOW)
        return r.json()

    def close(self):
        self.kitchen.check_clean_exit()
        self.hello.check_clean_exit()
        self.registry.check_clean_exit()
        self.h2.close()
        self.refuser.close()
        self.upstream.close()


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    n = Named(tmp_path_factory.mktemp("named"))
    yield n
    n.close()


def test_call_by_name_with_a_streamed_answer(named):
    from conftest import wait_for
    out = wait_for(lambda: (lambda o: o if o["status"] == 200 else None)(
        named.call("hello", "/hello/named", stream=1)), what="hello by name")
    assert out["read_error"] is None and out["start"] == '{"message":"Hello, named!"}'
    assert out["served_by"].startswith("hello-")


def test_call_by_name_upload_with_a_streamed_answer(named):
    n = 2 * 1024 * 1024
    out = named.call("mixed", "/sink", method="POST", upload=n, chunked=1, stream=1)
    # hello has no /sink: 404 or 405, read in pieces all the same
    assert out["error"] is None and out["read_error"] is None, out
    if out["served_by"] == "mixed-up":
        seen = __import__("json").loads(out["start"])
        assert seen["bytes"] == n and seen["crc"] == zlib.crc32(pattern(n))


def test_streamed_answers_retried_on_503_are_closed(named):
    before = len(named.upstream.requests)
    for _ in range(4):
        out = named.call("mixed", "/status?code=503", stream=1)
        # the upstream's 503 is closed and retried on hello, whose 404 wins
        assert out["error"] is None and out["status"] == 404, out
        assert out["served_by"] == "mixed-hello" and out["read_error"] is None
    assert len(named.upstream.requests) > before


def test_h2_streamed_answer_with_trailers(named):
    n = 8 * 1024 * 1024
    before = rss_kib(named.kitchen.proc.pid)
    out = named.call("h2py", f"/big?kb={n // 1024}", h2=1, stream=1)
    after = rss_kib(named.kitchen.proc.pid)
    assert out["error"] is None and out["status"] == 200, out
    assert out["read_error"] is None, out
    assert out["bytes"] == n and out["crc"] == zlib.crc32(pattern(n))
    assert out["trailers"] == {"grpc-status": "0", "x-trailer": "t1"}
    assert after - before < 16 * 1024, (before, after)
    # held whole, the same answer comes back too
    out = named.call("h2py", "/big?kb=64", h2=1)
    assert out["error"] is None and out["body"] == pattern(64 * 1024).decode()


def test_h2_streamed_answers_at_once_share_a_connection(named):
    """Eight streamed answers of 1 MiB at once, each read to the end: the
    streams share one connection (flow control is per stream, and the
    connection's window leaves room for all)."""
    from concurrent.futures import ThreadPoolExecutor
    n = 1024 * 1024
    named.call("h2py", "/big?kb=1", h2=1)  # a pooled connection, if none
    before = named.h2.accepted
    with ThreadPoolExecutor(8) as ex:
        outs = list(ex.map(lambda _: named.call("h2py", f"/big?kb={n // 1024}",
                                                h2=1, stream=1), range(8)))
    for out in outs:
        assert out["error"] is None and out["read_error"] is None, out
        assert out["bytes"] == n and out["crc"] == zlib.crc32(pattern(n))
    assert named.h2.accepted == before


def test_h2_streams_never_processed_are_tried_again(named):
    """An instance that answers each request with GOAWAY (the stream past
    its last one) processed nothing: even a POST is tried again, on the
    other instance."""
    for i in range(12):
        out = named.call("h2pair", "/refused", method="POST", h2=1)
        assert out["error"] is None and out["status"] == 200, out
        assert out["served_by"] == "pair-h2py", out
    assert named.refuser.refused >= 1


def test_h2_full_duplex_echo(named):
    # each piece waits for the echo of the one before: without full duplex
    # this would never end
    n = 1024 * 1024
    out = named.call("h2py", "/echo", method="POST", h2=1, stream=1, upload=n,
                     piece=8192, duplex=1)
    assert out["error"] is None and out["read_error"] is None, out
    assert out["sent"] == n and out["bytes"] == n
    assert out["crc"] == zlib.crc32(pattern(n))
    assert out["trailers"]["x-trailer"] == "t1"


def test_h1_full_duplex_echo(named):
    """HTTP/1.1 too: kitchen's /echo-stream sends each piece back as it
    reads it, and the body goes on after the answer's head."""
    from conftest import wait_for
    wait_for(lambda: named.call("kitchen", "/ticks")["status"] == 200,
             what="kitchen by name")
    n = 1024 * 1024
    for extra in ({"chunked": 1}, {}):
        out = named.call("kitchen", "/echo-stream", method="POST", stream=1, upload=n,
                         piece=8192, duplex=1, **extra)
        assert out["error"] is None and out["read_error"] is None, (extra, out)
        assert out["sent"] == n and out["bytes"] == n
        assert out["crc"] == zlib.crc32(pattern(n))
    # let go midway, with the pump waiting for an echo: the arena closes it
    for _ in range(3):
        out = named.call("kitchen", "/echo-stream", method="POST", stream=1,
                         upload=1 << 20, piece=8192, duplex=1, leak=1)
        assert out["error"] is None and out["status"] == 200, out
    out = named.call("kitchen", "/echo-stream", method="POST", stream=1, upload=100000,
                     duplex=1)
    assert out["read_error"] is None and out["bytes"] == 100000, out


def test_h2_upload_held_whole(named):
    n = 300 * 1024
    out = named.call("h2py", "/echo", method="PUT", h2=1, upload=n, chunked=1)
    assert out["error"] is None, out
    assert out["body"] == pattern(n).decode()


def test_h2_source_error_resets_the_stream(named):
    out = named.call("h2py", "/echo", method="POST", h2=1, stream=1,
                     upload=1024 * 1024, piece=8192, duplex=1, fail_at=65536)
    assert out["error"] == "MC_EIO" or out["read_error"] == "MC_EIO", out
    from conftest import wait_for
    wait_for(lambda: 8 in named.h2.resets, what="RST_STREAM CANCEL")


def test_h2_source_lying_about_its_length(named):
    for declare in (99999, 100001):
        out = named.call("h2py", "/echo", method="POST", h2=1, upload=100000,
                         declare=declare)
        assert out["error"] == "MC_EINVAL", (declare, out)
    out = named.call("h2py", "/echo", method="POST", h2=1, upload=100000)
    assert out["error"] is None and len(out["body"]) == 100000


def test_streams_left_open_are_closed_with_the_arena(named):
    # HTTP/1.1: the head read, the body not; the connection is closed
    out = named.call("mixed", "/stream?kb=4096", stream=1, leak=1)
    assert out["error"] is None, out
    # HTTP/2, with the body source's fiber still waiting for echoes
    for _ in range(3):
        out = named.call("h2py", "/echo", method="POST", h2=1, stream=1,
                         upload=1 << 20, piece=8192, duplex=1, leak=1)
        assert out["error"] is None and out["status"] == 200, out
    out = named.call("h2py", "/big?kb=1024", h2=1, stream=1, leak=1)
    assert out["error"] is None, out
    # all is well after
    out = named.call("h2py", "/echo", method="POST", h2=1, stream=1,
                     upload=100000, duplex=1)
    assert out["read_error"] is None and out["bytes"] == 100000, out


def test_h2_unread_answers_give_the_connection_window_back(named):
    """Streamed answers closed unread, each holding up to a stream window
    (64 KiB) of data, more of them than the shared connection's window (16
    MiB) holds: what they left is given back, so answers on the same
    connection still flow after."""
    named.call("h2py", "/big?kb=1", h2=1)
    before = named.h2.accepted
    for _ in range(300):
        out = named.call("h2py", "/big?kb=1024", h2=1, stream=1, leak=1)
        assert out["error"] is None, out
    out = named.call("h2py", "/big?kb=1024", h2=1, stream=1, timeout_ms=5000)
    assert out["read_error"] is None and out["bytes"] == 1024 * 1024, out
    assert named.h2.accepted == before  # all on one connection


def test_h2_timeout_resets_its_stream_only(named):
    """A stalled answer times out while a big one flows on the same
    connection: the first stream is reset (CANCEL), the second is read
    whole, and no connection is opened."""
    from concurrent.futures import ThreadPoolExecutor
    from conftest import wait_for
    named.call("h2py", "/big?kb=1", h2=1)
    before, resets = named.h2.accepted, len(named.h2.resets)
    with ThreadPoolExecutor(2) as ex:
        stalled = ex.submit(named.call, "h2py", "/stall", h2=1, stream=1,
                            timeout_ms=300)
        big = ex.submit(named.call, "h2py", "/big?kb=4096", h2=1, stream=1)
        stalled, big = stalled.result(), big.result()
    assert stalled["read_error"] == "MC_ETIMEDOUT", stalled
    assert big["read_error"] is None and big["bytes"] == 4096 * 1024, big
    wait_for(lambda: 8 in named.h2.resets[resets:], what="RST_STREAM CANCEL")
    assert named.h2.accepted == before


def test_h2_reset_and_stalled_answers_end_the_read_with_an_error(named):
    out = named.call("h2py", "/rst_mid", h2=1, stream=1)
    assert out["status"] == 200 and out["read_error"] == "MC_ECONNRESET", out
    assert out["bytes"] == 1000
    out = named.call("h2py", "/stall", h2=1, stream=1, timeout_ms=300)
    assert out["status"] == 200 and out["read_error"] == "MC_ETIMEDOUT", out
    assert out["start"] == "z" * 10
