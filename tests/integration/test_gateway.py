"""microc-gateway end to end: a registry, hello instances and a misbehaving
raw upstream registered in it, and the gateway in front, driven as a client
would (requests, raw sockets) with tokens made by PyJWT."""

import base64
import concurrent.futures
import json
import signal
import threading
import time

import jwt as pyjwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import SLOW, Service, Upstream, connect, one_response, read_until_closed, wait_for, metric

SECRET = "test-secret-0123456789abcdef-0123456789"


def b64(n):
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64_fixed(n, size):
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwks():
    rn = RSA_KEY.public_key().public_numbers()
    en = EC_KEY.public_key().public_numbers()
    return {"keys": [
        {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256",
         "n": b64(rn.n), "e": b64(rn.e)},
        {"kty": "EC", "kid": "ec1", "crv": "P-256",
         "x": b64_fixed(en.x, 32), "y": b64_fixed(en.y, 32)},
    ]}


def token(alg="HS256", key=SECRET, headers=None, **claims):
    now = int(time.time())
    body = {"sub": "alice", "iss": "microc-users", "aud": "microc",
            "exp": now + 300, "iat": now, "scope": "orders:read admin"}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return pyjwt.encode(body, key, algorithm=alg, headers=headers)


ROUTES = """
jwt:
  issuer: microc-users
  audience: microc
  jwks_file: jwks.json
  leeway: 1s
routes:
  - prefix: /api/hello/
    service: hello
    rewrite: /hello/
    auth: public
    retries: 2
  - prefix: /api/echo
    service: hello
    rewrite: /echo
    auth: jwt
    methods: [POST]
    max_body: 1k
  - prefix: /api/admin/
    service: raw
    rewrite: /
    auth: jwt
    scopes: [admin]
  - prefix: /api/orders/
    service: raw
    rewrite: /
    auth: jwt
    scopes: [orders:write]
  - prefix: /raw/
    service: raw
    strip_prefix: true
    auth: public
    timeout: 1s
    retries: 0
  - prefix: /limited/
    service: hello
    rewrite: /hello/
    auth: public
    rate_limit: {rps: 0.5, burst: 3}
  - prefix: /cors/
    service: hello
    rewrite: /hello/
    auth: public
    cors:
      origins: [https://shop.example]
      credentials: true
      expose_headers: [X-Request-Id]
  - prefix: /down/
    service: nobody
    auth: public
    timeout: 1s
"""


class Gateway:
    def __init__(self, tmp_path, hellos=2):
        self.tmp = tmp_path
        self.registry = Service("microc-registry", "--data-dir", str(tmp_path / "reg"))
        self.reg = self.registry.url
        self.hellos = [self.start_hello() for _ in range(hellos)]
        self.raw = Upstream()
        r = requests.put(f"{self.reg}/v1/agent/service/register", json={
            "ID": "raw-1", "Name": "raw", "Address": "127.0.0.1",
            "Port": self.raw.port,
            "Check": {"TTL": "1h", "Status": "passing"}})
        assert r.status_code == 200, r.text
        (tmp_path / "jwks.json").write_text(json.dumps(jwks()))
        self.routes = tmp_path / "routes.yaml"
        self.routes.write_text(ROUTES)
        wait_for(lambda: len(self.passing("hello")) == hellos, what="passing hellos")
        self.gw = Service("microc-gateway", "--routes", str(self.routes),
                          "--registry", self.reg, "--workers", "2",
                          env={"MICROC_JWT_SECRET": SECRET})
        self.url = self.gw.url

    def start_hello(self):
        return Service("hello", "--workers", "1", "--registry", self.reg,
                       "--check-interval", "1s")

    def passing(self, name):
        r = requests.get(f"{self.reg}/v1/health/service/{name}?passing")
        return [e["Service"]["ID"] for e in r.json()]

    def close(self):
        self.gw.check_clean_exit()
        for h in self.hellos:
            if h.alive():
                h.check_clean_exit()
        self.raw.close()
        self.registry.check_clean_exit()


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = Gateway(tmp_path_factory.mktemp("gw"))
    yield g
    g.close()


def problem(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def raw_headers(gw, path="/raw/headers", **kw):
    r = requests.get(gw.url + path, **kw)
    assert r.status_code == 200, r.text
    return r.json()


# ---- routing and forwarding ----------------------------------------------------


def test_public_route_reaches_the_service(gw):
    r = requests.get(f"{gw.url}/api/hello/world")
    assert r.status_code == 200
    assert r.json() == {"message": "Hello, world!"}
    assert r.headers["content-type"] == "application/json"


def test_unknown_path_404_and_wrong_method_405(gw):
    problem(requests.get(f"{gw.url}/nowhere"), 404)
    problem(requests.get(f"{gw.url}/api/echo"), 405)


def test_gateway_health(gw):
    assert requests.get(f"{gw.url}/health").json() == {"status": "ok"}


def test_forwarded_headers_and_hop_by_hop(gw):
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    seen = raw_headers(gw, "/raw/headers?a=1&b=two", headers={
        "traceparent": tp,
        "X-Request-Id": "req-abc-123",
        "Connection": "keep-alive, X-Secret",
        "X-Secret": "hop",
        "Keep-Alive": "timeout=5",
        "X-Custom": "kept",
        "X-Forwarded-For": "203.0.113.9",
        "X-Auth-Subject": "mallory",
        "X-Auth-Scopes": "admin",
    })
    h = seen["headers"]
    assert seen["target"] == "/headers?a=1&b=two"
    assert h["x-custom"] == "kept"
    assert "x-secret" not in h and "keep-alive" not in h
    assert h["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"].startswith("127.0.0.1:")
    assert h["x-request-id"] == "req-abc-123"
    assert h["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    # identity headers never come from the client
    assert "x-auth-subject" not in h and "x-auth-scopes" not in h


def test_user_agent_is_the_clients_or_none(gw):
    """A proxy passes the client's User-Agent on and makes none up."""
    assert raw_headers(gw, headers={"User-Agent": "shop/1.0"})["headers"][
        "user-agent"] == "shop/1.0"
    s = connect(gw.gw.port)
    s.sendall(b"GET /raw/headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    r = one_response(read_until_closed(s))
    assert r.status == 200
    assert "user-agent" not in r.json()["headers"]


def test_post_body_and_status_pass_through(gw):
    r = requests.post(f"{gw.url}/raw/headers", data=b"payload")
    assert r.json()["body"] == "payload" and r.json()["method"] == "POST"
    r = requests.get(f"{gw.url}/raw/status?code=418")
    assert r.status_code == 418 and r.text == "status"


def test_body_over_the_route_limit_is_413_unread(gw):
    t = token()
    r = requests.post(f"{gw.url}/api/echo", data=b"x" * 2048,
                      headers={"Authorization": f"Bearer {t}",
                               "Content-Type": "application/json"})
    problem(r, 413)


# ---- JWT ------------------------------------------------------------------------


def echo(gw, tok, body=None):
    headers = {} if tok is None else {"Authorization": f"Bearer {tok}"}
    return requests.post(f"{gw.url}/api/echo", headers=headers,
                         json=body or {"message": "hi", "count": 2})


def test_jwt_missing_token_is_401_with_challenge(gw):
    r = echo(gw, None)
    problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_jwt_valid_hs256_passes_and_model_validation_still_applies(gw):
    r = echo(gw, token())
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "hi" and r.json()["count"] == 2
    r = echo(gw, token(), {"message": "", "count": 0})
    assert r.status_code == 422
    assert len(r.json()["errors"]) == 2


def test_jwt_rs256_and_es256_from_jwks(gw):
    rs = token("RS256", RSA_KEY, headers={"kid": "rsa1"})
    assert echo(gw, rs).status_code == 200
    es = token("ES256", EC_KEY, headers={"kid": "ec1"})
    assert echo(gw, es).status_code == 200


@pytest.mark.parametrize("why,make", [
    ("expired", lambda: token(exp=int(time.time()) - 60)),
    ("not yet valid", lambda: token(nbf=int(time.time()) + 600)),
    ("no exp", lambda: token(exp=None)),
    ("wrong secret", lambda: token(key="another-secret-0123456789abcdef-0123")),
    ("wrong issuer", lambda: token(iss="someone-else")),
    ("wrong audience", lambda: token(aud="other")),
    ("alg none", lambda: pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 60,
                                       "iss": "microc-users", "aud": "microc"},
                                      None, algorithm="none")),
    ("tampered payload", lambda: (lambda p: p[0] + "." + base64.urlsafe_b64encode(
        json.dumps({"sub": "root", "exp": int(time.time()) + 60, "iss": "microc-users",
                    "aud": "microc"}).encode()).rstrip(b"=").decode() + "." + p[2])(
        token().split("."))),
    ("garbage", lambda: "not.a.token"),
    ("rs256 key unknown", lambda: token(
        "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048),
        headers={"kid": "rsa1"})),
])
def test_jwt_bad_tokens_are_401(gw, why, make):
    r = echo(gw, make())
    problem(r, 401)
    assert "invalid_token" in r.headers["www-authenticate"], why


def test_jwt_algorithm_confusion_is_refused(gw):
    """An HS256 token whose secret is the RSA public key, as an attacker who
    knows the public key would make it: the public key is never an HMAC
    secret."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac
    header = base64.urlsafe_b64encode(json.dumps(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa1"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(
        {"sub": "mallory", "exp": int(time.time()) + 60, "iss": "microc-users",
         "aud": "microc"}).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(pem, header + b"." + payload,
                                            hashlib.sha256).digest()).rstrip(b"=")
    problem(echo(gw, (header + b"." + payload + b"." + sig).decode()), 401)


def test_jwt_identity_forwarded_and_forgeries_replaced(gw):
    seen = raw_headers(gw, "/api/admin/headers", headers={
        "Authorization": f"Bearer {token()}",
        "X-Auth-Subject": "mallory", "x-auth-scopes": "everything"})
    h = seen["headers"]
    assert h["x-auth-subject"] == "alice"
    assert h["x-auth-scopes"] == "orders:read admin"


def test_jwt_missing_scope_is_403(gw):
    r = requests.get(f"{gw.url}/api/orders/ok",
                     headers={"Authorization": f"Bearer {token()}"})
    problem(r, 403)
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = requests.get(f"{gw.url}/api/orders/ok", headers={
        "Authorization": f"Bearer {token(scope='orders:write')}"})
    assert r.status_code == 200


# ---- rate limits and CORS ----------------------------------------------------------


def test_rate_limit_429_with_retry_after(gw):
    codes = [requests.get(f"{gw.url}/limited/x") for _ in range(6)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    problem(limited[0], 429)
    assert int(limited[0].headers["retry-after"]) >= 1


def test_cors_preflight_and_actual_request(gw):
    r = requests.options(f"{gw.url}/cors/x", headers={
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "content-type, x-thing"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "GET" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type, x-thing"
    assert r.headers["vary"] == "Origin"
    r = requests.options(f"{gw.url}/cors/x", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    problem(r, 403)
    r = requests.get(f"{gw.url}/cors/x", headers={"Origin": "https://shop.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert r.headers["access-control-expose-headers"] == "X-Request-Id"
    r = requests.get(f"{gw.url}/cors/x", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


# ---- upstream failures ----------------------------------------------------------------


def test_no_instance_is_503(gw):
    body = problem(requests.get(f"{gw.url}/down/x"), 503)
    assert "nobody" in body["detail"]


@pytest.mark.parametrize("path,status", [
    ("/raw/slow?ms=3000", 504),
    ("/raw/reset", 502),
    ("/raw/garbage", 502),
    ("/raw/half", 502),
    ("/raw/close", 502),
])
def test_misbehaving_upstream_answers(gw, path, status):
    problem(requests.get(gw.url + path, timeout=10 * SLOW), status)


def test_bad_clients_get_clear_answers(gw):
    with connect(gw.gw.port) as s:
        s.sendall(b"GET /api/hello/x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70000 +
                  b"\r\n\r\n")
        r = one_response(read_until_closed(s))
    assert r.status == 431
    with connect(gw.gw.port) as s:
        s.sendall(b"GET /api/hello/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        r = one_response(read_until_closed(s))
    assert r.status == 400


# ---- metrics, reload, instances dying ------------------------------------------------------


def test_metrics_per_route(gw):
    requests.get(f"{gw.url}/api/hello/m")
    text = requests.get(f"{gw.url}/metrics").text
    assert metric(text, "microc_gateway_requests_total", route="/api/hello/",
                  code="2xx") >= 1
    assert metric(text, "microc_gateway_request_duration_seconds_count",
                  route="/api/hello/") >= 1
    assert "microc_gateway_refusals_total" in text
    assert 'microc_upstream_requests_total{service="hello"' in text
    assert "microc_breaker_open{" in text


def test_sighup_reloads_and_a_bad_file_keeps_the_routes(gw):
    s = requests.Session()
    assert s.get(f"{gw.url}/api/hello/a").status_code == 200
    assert s.get(f"{gw.url}/v2/hello/a").status_code == 404
    gw.routes.write_text(ROUTES + """
  - prefix: /v2/
    service: hello
    rewrite: /
    auth: public
""")
    gw.gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: s.get(f"{gw.url}/v2/hello/a").status_code == 200,
             what="the new route")
    gw.routes.write_text("routes:\n  - prefix: /x\n    auht: public\n")
    gw.gw.proc.send_signal(signal.SIGHUP)
    gw.gw.wait_log(lambda e: e.get("msg", "").startswith("the route file is refused"))
    assert s.get(f"{gw.url}/v2/hello/a").status_code == 200
    assert s.get(f"{gw.url}/api/hello/a").status_code == 200
    gw.routes.write_text(ROUTES)
    gw.gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: s.get(f"{gw.url}/v2/hello/a").status_code == 404,
             what="the route to go")


def test_bad_route_file_at_start_exits_with_the_line(tmp_path, service):
    f = tmp_path / "r.yaml"
    f.write_text("routes:\n  - prefix: /x\n    service: a\n    auht: public\n")
    with pytest.raises(RuntimeError) as e:
        service("microc-gateway", "--routes", str(f), "--registry", "http://127.0.0.1:1")
    assert "r.yaml:4" in str(e.value) and "auht" in str(e.value)


def test_kill_9_under_load_idempotent_calls_see_no_errors(tmp_path):
    g = Gateway(tmp_path, hellos=3)
    try:
        s = requests.Session()
        for _ in range(30):
            assert s.get(f"{g.url}/api/hello/warm").status_code == 200
        stop = threading.Event()
        results = []

        def loop():
            sess = requests.Session()
            while not stop.is_set():
                try:
                    results.append(sess.get(f"{g.url}/api/hello/x", timeout=10).status_code)
                except requests.RequestException as e:
                    results.append(repr(e))

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(loop) for _ in range(4)]
            time.sleep(0.5)
            victim = g.hellos[0]
            victim.kill()
            wait_for(lambda: len(g.passing("hello")) == 2, what="the check to fail")
            time.sleep(1)
            stop.set()
            for f in futs:
                f.result()
        bad = [r for r in results if r != 200]
        assert len(results) > 100
        assert not bad, bad[:10]
        # the dead instance's failures show per instance, with its breaker
        text = requests.get(f"{g.url}/metrics").text
        assert 'microc_upstream_failures_total{service="hello"' in text
    finally:
        g.close()


def test_access_log_names_the_gateway_route(gw):
    rid = "log-route-check-1"
    requests.get(f"{gw.url}/api/hello/logged", headers={"X-Request-Id": rid})
    e = gw.gw.wait_log(lambda e: e.get("request_id") == rid)
    assert e["route"] == "/api/hello/" and e["status"] == 200


def test_slowloris_and_stalled_bodies_at_the_gateway(tmp_path, service):
    """The gateway is the edge: a client trickling its head or stalling its
    body is cut off, and a real client is served meanwhile."""
    reg = service("microc-registry", "--data-dir", str(tmp_path / "reg"))
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - {prefix: /, service: nobody, auth: public}\n")
    g = service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                "--workers", "1", "--header-timeout", "1s", "--body-timeout", "1s")
    slow = []
    for _ in range(50):  # half-sent heads
        c = connect(g.port)
        c.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow: a")
        slow.append(c)
    stalled = connect(g.port)
    stalled.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
    t0 = time.monotonic()
    r = requests.get(f"{g.url}/health", timeout=5)
    assert r.status_code == 200 and time.monotonic() - t0 < 1
    r = one_response(read_until_closed(stalled, timeout=10))
    assert r.status == 408
    for c in slow:
        data = read_until_closed(c, timeout=10)
        assert data.startswith(b"HTTP/1.1 408") or data == b""
        c.close()
    stalled.close()


def test_docs_paths_belong_to_the_routes(tmp_path, service, upstream):
    """A gateway has no API of its own to document: /docs and /openapi.json
    go to the services like any path; its health and metrics stay."""
    reg = service("microc-registry", "--data-dir", str(tmp_path / "reg"))
    requests.put(f"{reg.url}/v1/agent/service/register", json={
        "ID": "raw-1", "Name": "raw", "Address": "127.0.0.1", "Port": upstream.port,
        "Check": {"TTL": "1h", "Status": "passing"}}).raise_for_status()
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - {prefix: /, service: raw, auth: public}\n")
    g = service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                "--workers", "1")
    for path in ("/docs", "/openapi.json", "/docs/swagger-ui.css"):
        r = requests.get(g.url + path)
        assert (r.status_code, r.text) == (404, "no"), path  # the upstream's answer
    assert requests.get(g.url + "/headers").json()["target"] == "/headers"
    assert requests.get(g.url + "/health/live").status_code == 200
    assert "microc_gateway_requests_total" in requests.get(g.url + "/metrics").text


def test_balancers_spread_by_their_rule(tmp_path, service):
    """Two instances, one slow (200 ms an answer): round robin gives each
    half of the calls whatever their speed; least-outstanding and p2c (with
    two instances it always draws both) send the calls where fewer wait, so
    the slow one gets few."""
    slow, fast = Upstream(), Upstream()
    slow.delay_ms = 200
    try:
        reg = service("microc-registry", "--data-dir", str(tmp_path / "reg"))
        for sid, u in (("pair-slow", slow), ("pair-fast", fast)):
            requests.put(f"{reg.url}/v1/agent/service/register", json={
                "ID": sid, "Name": "pair", "Address": "127.0.0.1", "Port": u.port,
                "Check": {"TTL": "1h", "Status": "passing"}}).raise_for_status()
        routes = tmp_path / "routes.yaml"
        routes.write_text("routes:\n" + "".join(
            f"  - {{prefix: /{b}/, service: pair, strip_prefix: true, auth: public, "
            f"retries: 0, balancer: {b}}}\n"
            for b in ("round-robin", "least-outstanding", "p2c")))
        g = service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                    "--workers", "1")
        wait_for(lambda: requests.get(f"{g.url}/round-robin/ok").status_code == 200,
                 what="the pair found")

        def share_of_slow(balancer, n=40, threads=4):
            before = (len(slow.requests), len(fast.requests))

            def one(_):
                return requests.get(f"{g.url}/{balancer}/ok", timeout=10).status_code

            with concurrent.futures.ThreadPoolExecutor(threads) as ex:
                assert set(ex.map(one, range(n))) == {200}
            s, f = len(slow.requests) - before[0], len(fast.requests) - before[1]
            assert s + f == n
            return s / n

        assert 0.4 <= share_of_slow("round-robin") <= 0.6
        assert share_of_slow("least-outstanding") < 0.25
        assert share_of_slow("p2c") < 0.25
    finally:
        slow.close()
        fast.close()
