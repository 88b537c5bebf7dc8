"""The outbound HTTP client, driven through kitchen's /fetch route against
real peers: hello, another kitchen, and an upstream that misbehaves."""

import time

import requests

from conftest import SLOW


def fetch(svc, url, **params):
    params["url"] = url
    r = requests.get(f"{svc.url}/fetch", params=params, timeout=60)
    return r.status_code, r.json()


def test_calls_another_service(kitchen, hello):
    code, out = fetch(kitchen, f"{hello.url}/hello/client")
    assert code == 200
    assert out["status"] == 200
    assert out["body"] == '{"message":"Hello, client!"}'
    assert out["headers"]["Content-Type"] == "application/json"


def test_keep_alive_connections_are_reused(service, upstream):
    s = service("kitchen", "--workers", "1")
    code, out = fetch(s, f"{upstream.url}/ok", times=20)
    assert code == 200 and out["status"] == 200
    assert out["opened"] == 1
    assert out["reused"] == 19
    assert upstream.connections == 1
    assert len(upstream.requests) == 20


def test_request_line_headers_and_body(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/headers?a=1", method="POST",
                      body="payload")
    import json
    seen = json.loads(out["body"])
    assert seen["method"] == "POST"
    assert seen["target"] == "/headers?a=1"
    assert seen["body"] == "payload"
    h = seen["headers"]
    assert h["host"] == f"127.0.0.1:{upstream.port}"
    assert h["content-length"] == "7"
    assert h["user-agent"].startswith("microc/")


def test_trace_and_request_id_are_passed_on(kitchen, upstream):
    import json
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = requests.get(f"{kitchen.url}/fetch", params={"url": f"{upstream.url}/headers"},
                     headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01",
                              "x-request-id": "call-chain-1"})
    seen = json.loads(r.json()["body"])["headers"]
    assert seen["traceparent"].split("-")[1] == trace
    assert seen["traceparent"].split("-")[2] == r.headers["traceparent"].split("-")[2]
    assert seen["x-request-id"] == "call-chain-1"


def test_deadline_is_propagated_and_bounds_the_call(kitchen, upstream):
    import json
    # The caller gives kitchen 2 s; kitchen's call says how much is left.
    r = requests.get(f"{kitchen.url}/fetch", params={"url": f"{upstream.url}/headers"},
                     headers={"x-request-timeout-ms": "2000"})
    left = int(json.loads(r.json()["body"])["headers"]["x-request-timeout-ms"])
    assert 1000 < left <= 2000
    # A slow upstream is cut off by the caller's deadline, not the 30 s default.
    t0 = time.monotonic()
    r = requests.get(f"{kitchen.url}/fetch", params={"url": f"{upstream.url}/slow?ms=5000"},
                     headers={"x-request-timeout-ms": "300"})
    assert r.status_code == 502
    assert r.json()["error"] == "MC_ETIMEDOUT"
    assert time.monotonic() - t0 < 3 * SLOW


def test_own_timeout(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/slow?ms=3000", timeout_ms=200)
    assert code == 502 and out["error"] == "MC_ETIMEDOUT"


def test_handler_deadline_narrows(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/slow?ms=3000", deadline_ms=200)
    assert out["error"] == "MC_ETIMEDOUT"


def test_errors_from_bad_peers(kitchen, upstream):
    cases = {
        "/close": "MC_ECLOSED",
        "/half": "MC_ECLOSED",
        "/reset": ("MC_ECONNRESET", "MC_ECLOSED"),
        "/garbage": "MC_EPROTO",
    }
    for path, want in cases.items():
        code, out = fetch(kitchen, f"{upstream.url}{path}")
        assert code == 502, path
        if isinstance(want, tuple):
            assert out["error"] in want, (path, out)
        else:
            assert out["error"] == want, (path, out)
    # Nobody listens on port 1.
    code, out = fetch(kitchen, "http://127.0.0.1:1/")
    assert out["error"] == "MC_ECONNREFUSED"


def test_statuses_are_answers_not_errors(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/status?code=503")
    assert code == 200 and out["status"] == 503 and out["error"] is None


def test_chunked_and_large_answers(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/chunked")
    assert out["body"] == "hello world"
    code, out = fetch(kitchen, f"{upstream.url}/big?kb=4096")
    assert len(out["body"]) == 4096 * 1024


def test_oversized_answer_is_refused(kitchen, upstream):
    code, out = fetch(kitchen, f"{upstream.url}/big?kb=20000")
    assert out["error"] == "MC_ETOOBIG"


def test_stale_pooled_connection_is_replaced_for_idempotent_calls(service, upstream):
    s = service("kitchen", "--workers", "1")
    code, out = fetch(s, f"{upstream.url}/oneshot")
    assert out["status"] == 200
    time.sleep(0.3)  # the upstream has closed the pooled connection
    code, out = fetch(s, f"{upstream.url}/ok")
    assert out["status"] == 200, out


def test_bad_urls(kitchen):
    for url in ("ftp://x/", "http://", "https://127.0.0.1:1/", "127.0.0.1:80/x"):
        code, out = fetch(kitchen, url)
        assert out["error"] == "MC_EINVAL", url


def test_unknown_host_name(kitchen):
    code, out = fetch(kitchen, "http://no-such-host.invalid/")
    assert out["error"] == "MC_ENAME"


def test_name_resolution_for_localhost(kitchen, hello):
    code, out = fetch(kitchen, f"http://localhost:{hello.port}/hello/name")
    assert out["status"] == 200


def test_in_flight_calls_are_canceled_at_shutdown(service, upstream):
    import concurrent.futures
    import signal
    s = service("kitchen", "--workers", "1", "--shutdown-timeout", "300ms")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(requests.get, f"{s.url}/fetch",
                          params={"url": f"{upstream.url}/slow?ms=20000"}, timeout=60)
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        r = fut.result()
    assert r.json()["error"] == "MC_ECANCELED"
    assert s.proc.wait(10 * SLOW) == 0
