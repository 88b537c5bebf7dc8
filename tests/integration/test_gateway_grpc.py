"""gRPC through microc-gateway: grpcio clients call a grpcio server found in
the registry, over HTTP/2 end to end, with metadata, streams of messages
and trailers (grpc-status, grpc-message) passed on; the gateway's own
refusals reach gRPC clients as gRPC statuses."""

import time
from concurrent import futures

import grpc
import jwt as pyjwt
import pytest
import requests

from conftest import SLOW, LoopbackServer, Service, wait_for

SECRET = "grpc-secret-0123456789abcdef-0123456789"
system_echo_port = []


def identity(b):
    return b


class EchoServer:
    """A grpcio server with raw-bytes methods, so no .proto is needed."""

    def __init__(self):
        def say(request, context):
            context.send_initial_metadata((("x-served-by", "python"),))
            who = dict(context.invocation_metadata()).get("x-auth-subject", "")
            context.set_trailing_metadata((("x-trailer", "t1"),))
            return b"echo:" + request + (b"|" + who.encode() if who else b"")

        def many(request, context):
            for i in range(int(request.decode() or "3")):
                yield b"part-%d" % i

        def fail(request, context):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: é")

        def chat(requests_, context):  # bidirectional: an answer per message
            for m in requests_:
                yield b"re:" + m

        def total(requests_, context):  # client streaming
            return b"%d" % sum(len(m) for m in requests_)

        handlers = {
            "Say": grpc.unary_unary_rpc_method_handler(
                say, request_deserializer=identity, response_serializer=identity),
            "Many": grpc.unary_stream_rpc_method_handler(
                many, request_deserializer=identity, response_serializer=identity),
            "Fail": grpc.unary_unary_rpc_method_handler(
                fail, request_deserializer=identity, response_serializer=identity),
            "Chat": grpc.stream_stream_rpc_method_handler(
                chat, request_deserializer=identity, response_serializer=identity),
            "Total": grpc.stream_unary_rpc_method_handler(
                total, request_deserializer=identity, response_serializer=identity),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("echo.Echo", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0)


ROUTES = """
routes:
  - prefix: /echo.Echo/
    service: echo-grpc
    auth: public
    timeout: 5s
    max_body: 64m
  - prefix: /secure.Echo/
    service: echo-grpc
    rewrite: /echo.Echo/
    auth: jwt
  - prefix: /nobody.Svc/
    service: nobody
    auth: public
    timeout: 1s
"""


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grpcgw")
    reg = Service("microc-registry", "--data-dir", str(tmp / "reg"))
    echo = EchoServer()
    system_echo_port[:] = [echo.port]
    r = requests.put(f"{reg.url}/v1/agent/service/register", json={
        "ID": "echo-1", "Name": "echo-grpc", "Address": "127.0.0.1", "Port": echo.port,
        "Check": {"TTL": "1h", "Status": "passing"}})
    assert r.status_code == 200
    routes = tmp / "routes.yaml"
    routes.write_text(ROUTES)
    gw = Service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                 "--workers", "2", env={"MICROC_JWT_SECRET": SECRET})
    channel = grpc.insecure_channel(f"127.0.0.1:{gw.port}")
    grpc.channel_ready_future(channel).result(timeout=10 * SLOW)
    yield gw, channel
    channel.close()
    gw.check_clean_exit()
    echo.stop()
    reg.check_clean_exit()


def unary(channel, path):
    return channel.unary_unary(path, request_serializer=identity,
                               response_deserializer=identity)


def test_unary_call_with_metadata_and_trailers(system):
    _, channel = system
    reply, call = unary(channel, "/echo.Echo/Say").with_call(b"hi", timeout=10 * SLOW)
    assert reply == b"echo:hi"
    assert ("x-served-by", "python") in call.initial_metadata()
    assert ("x-trailer", "t1") in call.trailing_metadata()
    assert call.code() == grpc.StatusCode.OK


def test_server_stream_of_messages(system):
    _, channel = system
    many = channel.unary_stream("/echo.Echo/Many", request_serializer=identity,
                                response_deserializer=identity)
    assert list(many(b"4", timeout=10 * SLOW)) == [b"part-0", b"part-1", b"part-2",
                                                   b"part-3"]


def test_error_status_and_message_pass_through(system):
    _, channel = system
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "/echo.Echo/Fail")(b"x", timeout=10 * SLOW)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "no such thing: é"


def test_many_calls_at_once(system):
    _, channel = system
    say = unary(channel, "/echo.Echo/Say")
    fs = [say.future(b"n%d" % i, timeout=20 * SLOW) for i in range(40)]
    assert [f.result() for f in fs] == [b"echo:n%d" % i for i in range(40)]


def test_jwt_route_for_grpc(system):
    _, channel = system
    secure = unary(channel, "/secure.Echo/Say")
    with pytest.raises(grpc.RpcError) as e:
        secure(b"x", timeout=10 * SLOW)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    tok = pyjwt.encode({"sub": "carol", "exp": int(time.time()) + 60}, SECRET,
                       algorithm="HS256")
    reply = secure(b"x", metadata=(("authorization", f"Bearer {tok}"),),
                   timeout=10 * SLOW)
    assert reply == b"echo:x|carol"


def test_gateway_refusals_are_grpc_statuses(system):
    _, channel = system
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "/nobody.Svc/Call")(b"x", timeout=10 * SLOW)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "nobody" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        unary(channel, "/unknown.Svc/Call")(b"x", timeout=10 * SLOW)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_connections_to_the_service_are_reused(system):
    import subprocess
    _, channel = system
    echo_port = system_echo_port[0]

    def conns(state):
        out = subprocess.run(["ss", "-tan", "state", state], capture_output=True,
                             text=True).stdout
        return {l.split()[-2] if state == "time-wait" else l
                for l in out.splitlines()[1:] if f"127.0.0.1:{echo_port}" in l}

    say = unary(channel, "/echo.Echo/Say")
    say(b"warm", timeout=10 * SLOW)
    before = conns("time-wait")
    for i in range(60):
        assert say(b"r%d" % i, timeout=10 * SLOW) == b"echo:r%d" % i
    # a connection a call would leave 60 more in TIME-WAIT
    assert len(conns("time-wait") - before) <= 4
    assert len(conns("established")) <= 2 * 2 * 16  # both ends, per worker cap


def test_bidirectional_stream_answer_by_answer(system):
    """Each answer arrives before the next message is sent: the gateway
    passes both directions on as they come, holding neither."""
    import queue
    _, channel = system
    chat = channel.stream_stream("/echo.Echo/Chat", request_serializer=identity,
                                 response_deserializer=identity)
    outbox = queue.Queue()

    def messages():
        while True:
            m = outbox.get()
            if m is None:
                return
            yield m

    answers = chat(messages(), timeout=20 * SLOW)
    for i in range(5):
        outbox.put(b"m%d" % i)
        assert next(answers) == b"re:m%d" % i
    outbox.put(None)
    assert list(answers) == []
    assert answers.code() == grpc.StatusCode.OK


def test_client_stream_of_many_megabytes(system):
    """24 MiB in a stream, on a route whose body cap is 64m."""
    _, channel = system
    total = channel.stream_unary("/echo.Echo/Total", request_serializer=identity,
                                 response_deserializer=identity)
    msgs = [bytes(1 << 20) for _ in range(24)]
    assert total(iter(msgs), timeout=30 * SLOW) == b"%d" % (24 << 20)


def test_server_stream_of_many_messages(system):
    _, channel = system
    many = channel.unary_stream("/echo.Echo/Many", request_serializer=identity,
                                response_deserializer=identity)
    got = list(many(b"2000", timeout=30 * SLOW))
    assert len(got) == 2000 and got[-1] == b"part-1999"


def test_stream_past_the_route_body_cap_is_resource_exhausted(system):
    _, channel = system
    total = channel.stream_unary("/secure.Echo/Total", request_serializer=identity,
                                 response_deserializer=identity)
    tok = pyjwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, SECRET,
                       algorithm="HS256")
    with pytest.raises(grpc.RpcError) as e:
        total(iter([bytes(1 << 20)] * 3), timeout=30 * SLOW,
              metadata=(("authorization", f"Bearer {tok}"),))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# ---- many calls on one connection to an instance ---------------------------

class SlowServer:
    """A grpcio server whose methods tell which connection (peer) they were
    called on: Sleep sleeps the milliseconds its request names, Chat
    answers each message. It can run many handlers at once."""

    def __init__(self, port=0, max_streams=None):
        import threading
        self.lock = threading.Lock()
        self.started = 0  # Sleep calls

        def sleep(request, context):
            with self.lock:
                self.started += 1
            time.sleep(int(request.decode() or "0") / 1000)
            return context.peer().encode()

        def chat(requests_, context):
            for m in requests_:
                yield m + b"@" + context.peer().encode()

        handlers = {
            "Sleep": grpc.unary_unary_rpc_method_handler(
                sleep, request_deserializer=identity, response_serializer=identity),
            "Chat": grpc.stream_stream_rpc_method_handler(
                chat, request_deserializer=identity, response_serializer=identity),
        }
        options = [("grpc.max_concurrent_streams", max_streams)] if max_streams else []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=100),
                                  options=options)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("slow.Slow", handlers),))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def stop(self, grace=0):
        return self.server.stop(grace)


class Proxy(LoopbackServer):
    """A TCP relay to a port that can be changed, and whose connections can
    be cut at once: an instance that dies mid-flight, as the gateway sees
    it."""

    def __init__(self, target):
        self.target = target
        self.conns = []
        super().__init__()

    def serve(self, c):
        import socket
        import threading
        try:
            u = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            self.accepted -= 1  # counts relayed connections only
            c.close()
            return
        self.conns += [c, u]
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        import socket
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self):
        import socket
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.conns = []

    def close(self):
        self.cut()
        super().close()


MUX_ROUTES = """
routes:
  - prefix: /slow.Slow/
    service: slow-grpc
    auth: public
    timeout: 30s
  - prefix: /flaky.Slow/
    service: flaky-grpc
    rewrite: /slow.Slow/
    auth: public
    timeout: 30s
  - prefix: /capped.Slow/
    service: capped-grpc
    rewrite: /slow.Slow/
    auth: public
    timeout: 30s
"""


@pytest.fixture(scope="module")
def mux(tmp_path_factory):
    """A gateway with one worker before a slow grpcio server (slow-grpc),
    and before another one behind a Proxy (flaky-grpc)."""
    tmp = tmp_path_factory.mktemp("grpcmux")
    reg = Service("microc-registry", "--data-dir", str(tmp / "reg"))
    slow = SlowServer()
    flaky = SlowServer()
    capped = SlowServer(max_streams=2)
    proxy = Proxy(flaky.port)
    for sid, name, port in (("slow-1", "slow-grpc", slow.port),
                            ("flaky-1", "flaky-grpc", proxy.port),
                            ("capped-1", "capped-grpc", capped.port)):
        r = requests.put(f"{reg.url}/v1/agent/service/register", json={
            "ID": sid, "Name": name, "Address": "127.0.0.1", "Port": port,
            "Check": {"TTL": "1h", "Status": "passing"}})
        assert r.status_code == 200
    routes = tmp / "routes.yaml"
    routes.write_text(MUX_ROUTES)
    gw = Service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                 "--workers", "1")
    channel = grpc.insecure_channel(f"127.0.0.1:{gw.port}")
    grpc.channel_ready_future(channel).result(timeout=10 * SLOW)
    box = {"gw": gw, "channel": channel, "slow": slow, "flaky": flaky,
           "proxy": proxy}
    yield box
    channel.close()
    gw.check_clean_exit()
    proxy.close()
    box["flaky"].stop()
    capped.stop()
    slow.stop()
    reg.check_clean_exit()


def test_concurrent_slow_calls_share_one_connection(mux):
    """50 calls of 200 ms each at once: they take about one sleep, not 50
    (10 s), and the instance sees them on one connection from the gateway
    (gRPC's 100 concurrent streams a connection leave room for all)."""
    sleep = unary(mux["channel"], "/slow.Slow/Sleep")
    sleep(b"0", timeout=10 * SLOW)  # the gateway knows the service now
    t0 = time.monotonic()
    fs = [sleep.future(b"200", timeout=30 * SLOW) for _ in range(50)]
    peers = [f.result() for f in fs]
    took = time.monotonic() - t0
    print(f"50 calls of 200 ms in {took:.2f} s on {len(set(peers))} connection(s)")
    assert len(peers) == 50
    assert took < 5 * SLOW, took
    assert len(set(peers)) <= 2, set(peers)


def test_a_full_connection_makes_the_next_calls_open_another(mux):
    """The instance allows 2 concurrent streams a connection: 10 calls at
    once go on about 5 connections, at once, not 2 at a time on one."""
    sleep = unary(mux["channel"], "/capped.Slow/Sleep")
    sleep(b"0", timeout=10 * SLOW)  # its SETTINGS are known
    t0 = time.monotonic()
    fs = [sleep.future(b"500", timeout=30 * SLOW) for _ in range(10)]
    peers = [f.result() for f in fs]
    took = time.monotonic() - t0
    print(f"10 calls of 500 ms, 2 streams a connection: {took:.2f} s on "
          f"{len(set(peers))} connections")
    assert 4 <= len(set(peers)) <= 10, set(peers)
    assert took < 2.2 * SLOW, took  # 5 rounds of 500 ms would be 2.5 s


def test_bidi_stream_and_unary_calls_on_the_same_connection(mux):
    import queue
    chat = mux["channel"].stream_stream("/slow.Slow/Chat", request_serializer=identity,
                                        response_deserializer=identity)
    outbox = queue.Queue()

    def messages():
        while (m := outbox.get()) is not None:
            yield m

    answers = chat(messages(), timeout=30 * SLOW)
    outbox.put(b"m0")
    first = next(answers)
    assert first.startswith(b"m0@")
    peer = first.split(b"@", 1)[1]
    sleep = unary(mux["channel"], "/slow.Slow/Sleep")
    fs = [sleep.future(b"20", timeout=10 * SLOW) for _ in range(20)]
    peers = {f.result() for f in fs}
    outbox.put(b"m1")  # the stream went on meanwhile
    assert next(answers) == b"m1@" + peer
    outbox.put(None)
    assert list(answers) == []
    assert answers.code() == grpc.StatusCode.OK
    assert peers == {peer}


def test_instance_dying_mid_flight_fails_only_its_calls(mux):
    """The connection to one instance breaks with calls on it: those end
    with a gRPC status, calls to another instance go on, and the next call
    to the first one gets through on a new connection."""
    channel, proxy, flaky = mux["channel"], mux["proxy"], mux["flaky"]
    flaky_sleep = unary(channel, "/flaky.Slow/Sleep")
    slow_sleep = unary(channel, "/slow.Slow/Sleep")
    for _ in range(3):
        flaky_sleep(b"0", timeout=10 * SLOW)
    opened, started = proxy.accepted, flaky.started
    other = [slow_sleep.future(b"1000", timeout=30 * SLOW) for _ in range(5)]
    doomed = [flaky_sleep.future(b"3000", timeout=30 * SLOW) for _ in range(3)]
    wait_for(lambda: flaky.started >= started + 3, what="calls in flight")
    t0 = time.monotonic()
    proxy.cut()
    for f in doomed:
        with pytest.raises(grpc.RpcError) as e:
            f.result()
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.UNKNOWN), e.value
    assert time.monotonic() - t0 < 2.5 * SLOW  # not after the 3 s sleep
    assert len({f.result() for f in other}) == 1
    assert flaky_sleep(b"0", timeout=10 * SLOW)
    assert proxy.accepted == opened + 1


def test_goaway_lets_calls_finish_and_new_ones_take_a_new_connection(mux):
    """The instance shuts down gracefully (GOAWAY) with calls on the
    connection: they finish; a call made after goes to its successor on a
    new connection."""
    channel, proxy = mux["channel"], mux["proxy"]
    flaky_sleep = unary(channel, "/flaky.Slow/Sleep")
    flaky_sleep(b"0", timeout=10 * SLOW)
    old = mux["flaky"]
    started, opened = old.started, proxy.accepted
    running = [flaky_sleep.future(b"1000", timeout=30 * SLOW) for _ in range(3)]
    wait_for(lambda: old.started >= started + 3, what="calls in flight")
    successor = SlowServer()
    mux["flaky"] = successor
    proxy.target = successor.port  # new connections reach the successor
    done = old.stop(10)  # GOAWAY; the calls on it may finish
    time.sleep(0.3)
    assert flaky_sleep(b"0", timeout=10 * SLOW)
    assert proxy.accepted == opened + 1
    assert [f.result() for f in running] and all(f.code() == grpc.StatusCode.OK
                                                 for f in running)
    done.wait(10)
