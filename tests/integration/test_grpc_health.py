"""gRPC health checks (mc_grpc_health_check, lib/grpc) against servers
nobody here wrote: Debian's grpcio as the gRPC server, Python's http.server
as an HTTP/1.1 server that does not speak HTTP/2, and sockets that refuse
or say nothing. The checks run in grpcprobe (tests/apps/grpcprobe), a
microc service whose GET /probe makes one call from its request's fiber.

Debian's grpcio ships no grpc_health module, so the Health/Check handler
here is a generic handler on raw bytes, with the protobuf encoded by hand
(field 1, as grpc/health/v1/health.proto declares)."""

import http.server
import signal
import socket
import threading
import time
from concurrent import futures

import grpc
import pytest
import requests

from conftest import SLOW

SERVING, NOT_SERVING, UNKNOWN = 1, 2, 0
GHOST_MESSAGE = "unknown service: ghost \u2013 caf\u00e9 100%"


def read_varint(b, i):
    shift = value = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value, i


def parse_service(request):
    """HealthCheckRequest.service (field 1, length-delimited), or ""."""
    i, service = 0, b""
    while i < len(request):
        key, i = read_varint(request, i)
        if key & 7 == 2:
            n, i = read_varint(request, i)
            if key >> 3 == 1:
                service = request[i:i + n]
            i += n
        elif key & 7 == 0:
            _, i = read_varint(request, i)
        else:
            raise ValueError(f"unexpected wire type in {request!r}")
    return service.decode()


def health_response(status):
    # proto3 leaves the default (UNKNOWN = 0) out: an empty message.
    return b"" if status == 0 else bytes([0x08, status])


class GrpcServer:
    """A grpcio server: with the health service (statuses by service name)
    or, with statuses=None, with only an unrelated service."""

    def __init__(self, statuses):
        self.statuses = statuses
        self.calls = []  # (service, metadata dict, time_remaining)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        if statuses is not None:
            handler = grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health",
                {"Check": grpc.unary_unary_rpc_method_handler(self.check)})
        else:
            handler = grpc.method_handlers_generic_handler(
                "demo.Echo",
                {"Say": grpc.unary_unary_rpc_method_handler(lambda r, c: r)})
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def check(self, request, context):
        service = parse_service(request)
        self.calls.append((service, dict(context.invocation_metadata()),
                           context.time_remaining()))
        if service not in self.statuses:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          GHOST_MESSAGE if service == "ghost"
                          else f"unknown service: {service}")
        return health_response(self.statuses[service])

    def stop(self):
        self.server.stop(0).wait(5)


@pytest.fixture
def health_server():
    s = GrpcServer({"": SERVING, "orders": SERVING, "payments": NOT_SERVING,
                    "warming": UNKNOWN})
    yield s
    s.stop()


@pytest.fixture
def probe(service):
    p = service("grpcprobe", "--workers", "1", "--shutdown-timeout", "1s")
    p.get = lambda **q: requests.get(
        f"{p.url}/probe", params=q, timeout=30 * SLOW).json()
    return p


class MuteServer:
    """Accepts TCP connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.got = b""
        self.accepted = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            while True:
                c, _ = self.sock.accept()
                self.conns.append(c)
                c.settimeout(5 * SLOW)
                try:
                    self.got += c.recv(65536)  # the HTTP/2 preface
                except OSError:
                    pass
                self.accepted.set()
        except OSError:
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def mute():
    m = MuteServer()
    yield m
    m.close()


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- a real gRPC server --------------------------------------------------


def test_server_as_a_whole_is_serving(probe, health_server):
    r = probe.get(host="127.0.0.1", port=health_server.port, timeout_ms=5000)
    assert r["rc"] == "OK", r
    assert r["grpc_status"] == 0
    assert r["serving"] == SERVING and r["serving_name"] == "SERVING"
    assert r["message"] == ""
    service, md, left = health_server.calls[-1]
    assert service == ""
    assert md["user-agent"].startswith("microc-grpc/"), md
    # grpc-timeout told the server how long it had.
    assert left is not None and 0 < left <= 5.0, left


def test_named_services(probe, health_server):
    port = health_server.port
    r = probe.get(host="127.0.0.1", port=port, service="orders")
    assert (r["rc"], r["grpc_status"], r["serving"]) == ("OK", 0, SERVING), r
    r = probe.get(host="127.0.0.1", port=port, service="payments")
    assert (r["rc"], r["grpc_status"], r["serving"]) == ("OK", 0, NOT_SERVING), r
    assert r["serving_name"] == "NOT_SERVING"
    # UNKNOWN is proto3's default: the server sends an empty message.
    r = probe.get(host="127.0.0.1", port=port, service="warming")
    assert (r["rc"], r["grpc_status"], r["serving"]) == ("OK", 0, UNKNOWN), r
    assert [c[0] for c in health_server.calls] == ["orders", "payments",
                                                   "warming"]


def test_consul_target_form(probe, health_server):
    r = probe.get(target=f"localhost:{health_server.port}/payments")
    assert (r["rc"], r["grpc_status"], r["serving"]) == ("OK", 0, NOT_SERVING), r
    r = probe.get(target=f"127.0.0.1:{health_server.port}")
    assert (r["rc"], r["serving"]) == ("OK", SERVING), r


def test_unknown_service_is_not_found_with_its_message(probe, health_server):
    r = probe.get(host="127.0.0.1", port=health_server.port, service="ghost")
    assert r["rc"] == "OK", r
    assert r["grpc_status"] == 5 and r["status_name"] == "NOT_FOUND", r
    assert r["serving"] == 0
    # grpc-message arrives percent-encoded and is decoded.
    assert r["message"] == GHOST_MESSAGE, r


def test_server_without_health_service_is_unimplemented(probe):
    s = GrpcServer(None)
    try:
        r = probe.get(host="127.0.0.1", port=s.port, timeout_ms=5000)
    finally:
        s.stop()
    assert r["rc"] == "OK", r
    assert r["grpc_status"] == 12 and r["status_name"] == "UNIMPLEMENTED", r
    assert r["serving"] == 0


def test_many_checks_in_a_row(probe, health_server):
    for i in range(20):
        r = probe.get(host="127.0.0.1", port=health_server.port,
                      service="orders" if i % 2 else "payments")
        assert r["rc"] == "OK", r
    assert len(health_server.calls) == 20


# ---- failures --------------------------------------------------------------


def test_dead_port_is_refused(probe):
    r = probe.get(host="127.0.0.1", port=dead_port(), timeout_ms=5000)
    assert r["rc"] == "MC_ECONNREFUSED", r
    assert r["grpc_status"] == -1
    assert r["message"], r


def test_unresolvable_name(probe):
    r = probe.get(host="no-such-host.invalid", port=50051, timeout_ms=5000)
    assert r["rc"] in ("MC_ENAME", "MC_ETIMEDOUT"), r
    assert r["grpc_status"] == -1


def test_silent_server_times_out_in_bounded_time(probe, mute):
    t0 = time.monotonic()
    r = probe.get(host="127.0.0.1", port=mute.port, timeout_ms=300)
    took = time.monotonic() - t0
    assert r["rc"] == "MC_ETIMEDOUT", r
    assert r["grpc_status"] == -1
    assert 290 <= r["elapsed_ms"] < 3000 * SLOW, r
    assert took < 5 * SLOW
    # It did speak HTTP/2 with prior knowledge.
    assert mute.got.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), mute.got


class Http1Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_http1_server_is_a_protocol_error(probe):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Http1Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        r = probe.get(host="127.0.0.1", port=srv.server_address[1],
                      timeout_ms=5000)
    finally:
        srv.shutdown()
        srv.server_close()
    assert r["rc"] == "MC_EPROTO", r
    assert r["grpc_status"] == -1
    assert "HTTP/2" in r["message"], r


# ---- a scripted HTTP/2 peer ---------------------------------------------------

DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY = 0, 1, 3, 4, 7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, stream, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            stream.to_bytes(4, "big") + payload)


def hpack_int(n, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([first | n])
    out = bytearray([first | limit])
    n -= limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    out.append(n)
    return bytes(out)


def hpack(headers):
    """Literal fields without indexing, new names, no Huffman: any HPACK
    decoder reads them, and they need no state."""
    out = b""
    for name, value in headers:
        name, value = name.encode(), value.encode()
        out += b"\x00" + hpack_int(len(name), 7) + name
        out += hpack_int(len(value), 7) + value
    return out


def grpc_msg(body, flag=0):
    return bytes([flag]) + len(body).to_bytes(4, "big") + body


def response_headers(status="200", ctype="application/grpc", extra=()):
    h = [(":status", status)]
    if ctype:
        h.append(("content-type", ctype))
    return hpack(h + list(extra))


class H2Peer:
    """Speaks just enough HTTP/2 server side to answer one request on
    stream 1 with the frames it is given, then waits for the client to
    close (or closes first when close=True)."""

    def __init__(self, frames, close=False):
        self.frames = frames
        self.close_first = close
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _read_frame(self, c, buf):
        while len(buf) < 9:
            chunk = c.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        n = int.from_bytes(buf[:3], "big")
        while len(buf) < 9 + n:
            chunk = c.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        ftype, flags = buf[3], buf[4]
        stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        return (ftype, flags, stream), buf[9 + n:]

    def _run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        c.settimeout(10 * SLOW)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            buf = b""
            while len(buf) < len(PREFACE):
                buf += c.recv(65536)
            assert buf.startswith(PREFACE), buf
            buf = buf[len(PREFACE):]
            c.sendall(h2_frame(SETTINGS, 0, 0))
            # Read until the request is complete (END_STREAM on stream 1).
            while True:
                (ftype, flags, stream), buf = self._read_frame(c, buf)
                if ftype == SETTINGS and not flags & ACK:
                    c.sendall(h2_frame(SETTINGS, ACK, 0))
                if stream == 1 and flags & END_STREAM:
                    break
            c.sendall(b"".join(self.frames))
            if not self.close_first:
                while c.recv(65536):
                    pass
        except (OSError, EOFError):
            pass
        finally:
            c.close()

    def stop(self):
        self.sock.close()


def scripted(probe, frames, close=False, **q):
    peer = H2Peer(frames, close)
    try:
        return probe.get(host="127.0.0.1", port=peer.port,
                         timeout_ms=5000, **q)
    finally:
        peer.stop()


def test_trailers_only_answer(probe):
    r = scripted(probe, [h2_frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                  response_headers(extra=[
                                      ("grpc-status", "7"),
                                      ("grpc-message", "go away%21 %zz")]))])
    assert (r["rc"], r["grpc_status"]) == ("OK", 7), r
    assert r["status_name"] == "PERMISSION_DENIED"
    assert r["message"] == "go away! %zz", r  # broken escapes kept


def test_headers_data_trailers_in_pieces(probe):
    body = grpc_msg(b"\x08\x01")
    frames = [h2_frame(HEADERS, END_HEADERS, 1, response_headers())]
    frames += [h2_frame(DATA, 0, 1, body[i:i + 1]) for i in range(len(body))]
    frames.append(h2_frame(HEADERS, END_HEADERS | END_STREAM, 1,
                           hpack([("grpc-status", "0")])))
    r = scripted(probe, frames)
    assert (r["rc"], r["grpc_status"], r["serving"]) == ("OK", 0, SERVING), r


def test_serving_status_outside_the_enum_is_passed_on(probe):
    r = scripted(probe, [
        h2_frame(HEADERS, END_HEADERS, 1, response_headers()),
        h2_frame(DATA, 0, 1, grpc_msg(b"\x08\x07")),
        h2_frame(HEADERS, END_HEADERS | END_STREAM, 1,
                 hpack([("grpc-status", "0")]))])
    assert (r["rc"], r["serving"]) == ("OK", 7), r
    assert r["serving_name"] == "UNKNOWN_SERVING_STATUS"


def ok_with(*data_frames, ctype="application/grpc", status="200"):
    return ([h2_frame(HEADERS, END_HEADERS, 1, response_headers(status, ctype))]
            + [h2_frame(DATA, 0, 1, d) for d in data_frames]
            + [h2_frame(HEADERS, END_HEADERS | END_STREAM, 1,
                        hpack([("grpc-status", "0")]))])


@pytest.mark.parametrize("frames, text", [
    (ok_with(), "0 messages"),
    (ok_with(grpc_msg(b"\x08\x01") + grpc_msg(b"\x08\x01")), "2 messages"),
    (ok_with(grpc_msg(b"\x08\x01")[:-1]), "inside a message"),
    (ok_with(grpc_msg(b"\x08\x01", flag=1)), "compressed"),
    (ok_with(grpc_msg(b"\x08\x01", flag=2)), "prefix"),
    (ok_with(grpc_msg(b"\xff\xff\xff")), "HealthCheckResponse"),
    (ok_with(grpc_msg(b"\x08\x01"), ctype="text/html"), "content-type"),
    (ok_with(grpc_msg(b"\x08\x01"), status="404"), "HTTP status 404"),
    ([h2_frame(HEADERS, END_HEADERS | END_STREAM, 1,
               response_headers())], "grpc-status"),
    ([h2_frame(HEADERS, END_HEADERS | END_STREAM, 1,
               response_headers(extra=[("grpc-status", "x1")]))],
     "grpc-status"),
], ids=["no-message", "two-messages", "cut-message", "compressed", "bad-flag",
        "not-protobuf", "content-type", "http-404", "no-grpc-status",
        "bad-grpc-status"])
def test_grpc_violations_are_protocol_errors(probe, frames, text):
    r = scripted(probe, frames)
    assert r["rc"] == "MC_EPROTO", r
    assert r["grpc_status"] == -1
    assert text in r["message"], r


def test_oversize_message_is_refused_on_its_prefix(probe):
    r = scripted(probe, ok_with(b"\x00" + (1 << 20).to_bytes(4, "big")))
    assert r["rc"] == "MC_ETOOBIG", r


def test_stream_reset_by_the_server(probe):
    r = scripted(probe, [
        h2_frame(HEADERS, END_HEADERS, 1, response_headers()),
        h2_frame(RST_STREAM, 0, 1, (8).to_bytes(4, "big"))])  # CANCEL
    assert r["rc"] == "MC_ECONNRESET", r
    assert "CANCEL" in r["message"], r


def test_connection_closed_mid_answer(probe):
    r = scripted(probe, [h2_frame(HEADERS, END_HEADERS, 1, response_headers())],
                 close=True)
    assert r["rc"] in ("MC_ECLOSED", "MC_ECONNRESET"), r


def test_goaway_before_the_stream(probe):
    # Last stream 0: ours was never processed, which is as good as refused
    # (safe to send again).
    r = scripted(probe, [h2_frame(GOAWAY, 0, 0, bytes(8))])
    assert r["rc"] == "MC_ECONNREFUSED", r
    assert "went away" in r["message"], r


def test_data_before_headers_breaks_http2(probe):
    r = scripted(probe, [h2_frame(DATA, 0, 1, grpc_msg(b"\x08\x01"))])
    assert r["rc"] == "MC_EPROTO", r
    assert "PROTOCOL_ERROR" in r["message"], r


def test_garbage_instead_of_settings(probe, service):
    # Not HTTP/2 at all, and not HTTP/1.1 either.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)

    def serve():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        c.recv(65536)
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        r = probe.get(host="127.0.0.1", port=s.getsockname()[1],
                      timeout_ms=5000)
    finally:
        s.close()
    assert r["rc"] == "MC_EPROTO", r


# ---- shutdown --------------------------------------------------------------


def test_sigterm_with_a_call_in_flight_exits_cleanly(service, mute):
    p = service("grpcprobe", "--workers", "1", "--shutdown-timeout", "1s")
    out = {}

    def call():
        try:
            out["r"] = requests.get(
                f"{p.url}/probe",
                params={"host": "127.0.0.1", "port": mute.port,
                        "timeout_ms": 60000},
                timeout=30 * SLOW).json()
        except Exception as e:  # noqa: BLE001 - reported below
            out["e"] = e

    t = threading.Thread(target=call)
    t.start()
    assert mute.accepted.wait(10 * SLOW), "the call never connected"
    p.proc.send_signal(signal.SIGTERM)
    t.join(30 * SLOW)
    assert not t.is_alive()
    # Past the shutdown timeout the handler's fiber is canceled: the call
    # returns MC_ECANCELED and the handler still answers.
    assert "r" in out, out
    assert out["r"]["rc"] == "MC_ECANCELED", out
    # Let it finish on its own: a second SIGTERM while it drains (which
    # check_clean_exit sends to a live process) kills it outright.
    p.proc.wait(20 * SLOW)
    p.check_clean_exit()  # exit 0, no sanitizer report
