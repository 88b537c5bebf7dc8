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

from conftest import SLOW, Service

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
