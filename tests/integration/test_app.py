"""The service runtime, seen through the kitchen test service: typed
parameters, fibers, the thread pool, middleware, failing handlers,
tracing, logs and metrics."""

import concurrent.futures
import re
import time

import requests

from conftest import SLOW, exchange, one_response, metric


# ---- typed parameters ----------------------------------------------------------


def test_typed_path_and_query_parameters(kitchen):
    r = requests.get(f"{kitchen.url}/items/42?verbose=yes")
    assert r.status_code == 200
    assert r.json() == {"id": 42, "verbose": True}
    assert requests.get(f"{kitchen.url}/items/7").json() == {"id": 7, "verbose": False}


def test_path_parameter_of_wrong_type_is_422(kitchen):
    r = requests.get(f"{kitchen.url}/items/abc")
    assert r.status_code == 422
    assert r.json()["errors"] == [{
        "loc": ["path", "id"], "type": "int_parsing",
        "msg": "Input should be a valid integer, unable to parse string as an integer"}]
    r = requests.get(f"{kitchen.url}/items/0")
    assert r.json()["errors"][0]["type"] == "greater_than_equal"


def test_path_and_query_errors_are_reported_together(kitchen):
    r = requests.get(f"{kitchen.url}/items/-3?verbose=maybe")
    assert r.status_code == 422
    assert [(e["loc"], e["type"]) for e in r.json()["errors"]] == [
        (["path", "id"], "greater_than_equal"), (["query", "verbose"], "bool_parsing")]


def test_query_model_defaults_enums_arrays_and_numbers(kitchen):
    r = requests.get(f"{kitchen.url}/search", params={"q": "c programming"})
    assert r.json() == {"q": "c programming", "limit": 10, "tags": None,
                        "sort": "asc", "min_price": None}
    r = requests.get(f"{kitchen.url}/search", params=[
        ("q", "x"), ("limit", "5"), ("tags", "a"), ("tags", "bc"), ("sort", "desc"),
        ("min_price", "2.5")])
    assert r.json() == {"q": "x", "limit": 5, "tags": ["a", "bc"], "sort": "desc",
                        "min_price": 2.5}


def test_query_violations(kitchen):
    r = requests.get(f"{kitchen.url}/search", params=[
        ("limit", "1000"), ("tags", "ok"), ("tags", "NO"), ("sort", "up"),
        ("min_price", "-1")])
    assert r.status_code == 422
    got = [(e["loc"], e["type"]) for e in r.json()["errors"]]
    assert got == [
        (["query", "q"], "missing"),
        (["query", "limit"], "less_than_equal"),
        (["query", "tags", 1], "string_pattern_mismatch"),
        (["query", "sort"], "enum"),
        (["query", "min_price"], "greater_than_equal"),
    ]
    enum_msg = [e["msg"] for e in r.json()["errors"] if e["type"] == "enum"][0]
    assert enum_msg == "Input should be 'asc' or 'desc'"


def test_query_percent_and_plus_decoding(kitchen):
    r = requests.get(f"{kitchen.url}/search?q=a+b%2Bc%20d")
    assert r.json()["q"] == "a b+c d"


def test_malformed_percent_encoding_in_path_is_400(kitchen):
    # raw: requests would re-quote the bad escape
    r = one_response(exchange(kitchen.port, b"GET /items/%zz HTTP/1.1\r\nHost: t\r\n"
                                            b"Connection: close\r\n\r\n"))
    assert r.status == 400
    assert r.header("content-type") == "application/problem+json"


def test_invalid_utf8_in_a_query_string_is_422(kitchen):
    r = requests.get(f"{kitchen.url}/search?q=%ff%fe")
    assert r.status_code == 422
    assert r.json()["errors"][0]["type"] == "string_unicode"


# ---- fibers and the thread pool -------------------------------------------------


def test_sleeping_handlers_do_not_block_the_worker(service):
    # One worker: twenty handlers sleeping 1 s each finish together, because
    # mc_sleep suspends the fiber, not the thread.
    s = service("kitchen", "--workers", "1")
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        rs = list(pool.map(lambda _: requests.get(f"{s.url}/sleep?ms=1000", timeout=60),
                           range(20)))
    took = time.monotonic() - t0
    assert all(r.status_code == 200 for r in rs)
    assert all(r.json()["elapsed_ms"] >= 1000 for r in rs)
    assert took < 10 * SLOW, f"20 concurrent 1 s sleeps took {took:.1f}s: not concurrent"
    # ...while other requests on the same worker are served meanwhile.


def test_worker_serves_others_while_a_handler_sleeps(service):
    s = service("kitchen", "--workers", "1")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(requests.get, f"{s.url}/sleep?ms=3000", timeout=60)
        time.sleep(0.2)
        r = requests.get(f"{s.url}/items/1", timeout=60)
        assert r.status_code == 200
        assert not slow.done()
        assert slow.result().status_code == 200


def test_blocking_work_runs_on_another_thread(kitchen):
    r = requests.get(f"{kitchen.url}/blocking?ms=10")
    assert r.json() == {"other_thread": True}


def test_spawned_fibers_outlive_the_request(kitchen):
    before = requests.get(f"{kitchen.url}/spawn").json()["done"]
    # Both workers may serve these; count across them.
    for _ in range(4):
        assert requests.post(f"{kitchen.url}/spawn").status_code == 202
    deadline = time.monotonic() + 5 * SLOW
    done = before
    while time.monotonic() < deadline and done < before + 4:
        time.sleep(0.05)
        done = requests.get(f"{kitchen.url}/spawn").json()["done"]
    assert done == before + 4


# ---- handlers that fail -------------------------------------------------------------


def test_handler_error_is_500_problem(kitchen):
    r = requests.get(f"{kitchen.url}/fail")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "input/output error" in r.json()["detail"]


def test_handler_that_does_not_answer_is_500(kitchen):
    r = requests.get(f"{kitchen.url}/silent")
    assert r.status_code == 500
    assert "without answering" in r.json()["detail"]


def test_large_answers(kitchen):
    r = requests.get(f"{kitchen.url}/big?kb=8192")
    assert r.status_code == 200
    assert len(r.content) == 8192 * 1024
    assert r.content[:26] == b"abcdefghijklmnopqrstuvwxyz"


# ---- middleware -------------------------------------------------------------------


def test_middleware_runs_before_and_after(kitchen):
    r = requests.get(f"{kitchen.url}/items/1")
    assert r.headers["x-middleware"] == "before,after"


def test_middleware_runs_for_framework_answers_too(kitchen):
    r = requests.get(f"{kitchen.url}/nope")
    assert r.status_code == 404
    assert r.headers["x-middleware"] == "before,after"
    r = requests.get(f"{kitchen.url}/items/x")
    assert r.status_code == 422
    assert r.headers["x-middleware"] == "before,after"


def test_middleware_can_stop_the_chain(kitchen):
    r = requests.get(f"{kitchen.url}/items/1", headers={"x-block": "1"})
    assert r.status_code == 403
    assert r.json()["detail"] == "blocked by middleware"
    # its after still runs; its before stopped ahead of setting the local
    assert r.headers["x-middleware"] == "after"


# ---- tracing, request ids and logs -------------------------------------------------


TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")


def test_traceparent_is_started_when_absent(kitchen):
    r = requests.get(f"{kitchen.url}/items/1")
    m = TRACEPARENT.match(r.headers["traceparent"])
    assert m and m.group(1) != "0" * 32
    assert len(r.headers["x-request-id"]) == 32


def test_traceparent_is_honoured(kitchen):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = requests.get(f"{kitchen.url}/items/1",
                     headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    m = TRACEPARENT.match(r.headers["traceparent"])
    assert m.group(1) == trace
    assert m.group(2) != "00f067aa0ba902b7"  # our own span


def test_invalid_traceparent_starts_a_new_trace(kitchen):
    for bad in ("00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "garbage"):
        r = requests.get(f"{kitchen.url}/items/1", headers={"traceparent": bad})
        m = TRACEPARENT.match(r.headers["traceparent"])
        assert m and m.group(1) not in ("0" * 32, "4bf92f3577b34da6a3ce929d0e0e4736")


def test_request_id_is_honoured_or_made(kitchen):
    r = requests.get(f"{kitchen.url}/items/1", headers={"x-request-id": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    r = requests.get(f"{kitchen.url}/items/1", headers={"x-request-id": 'bad"id'})
    assert r.headers["x-request-id"] != 'bad"id'


def test_every_request_is_logged_as_json(kitchen):
    trace = "0af7651916cd43dd8448eb211c80319c"
    r = requests.get(f"{kitchen.url}/items/5?verbose=1",
                     headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01",
                              "x-request-id": "log-test-1"})
    assert r.status_code == 200
    line = kitchen.wait_log(lambda e: e.get("request_id") == "log-test-1")
    assert line["msg"] == "request"
    assert line["level"] == "info"
    assert line["service"] == "kitchen"
    assert line["method"] == "GET"
    assert line["route"] == "/items/{id}"
    assert line["path"] == "/items/5"
    assert line["status"] == 200
    assert line["trace_id"] == trace
    assert isinstance(line["duration_ms"], (int, float))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["ts"])


def test_text_log_format(service):
    s = service("kitchen", "--workers", "1", "--log-format", "text")
    requests.get(f"{s.url}/items/1", headers={"x-request-id": "text-1"})
    deadline = time.monotonic() + 5 * SLOW
    while "request_id=text-1" not in s.log_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    line = [l for l in s.log_text().splitlines() if "request_id=text-1" in l][0]
    assert " info " in line and "kitchen: request" in line and "status=200" in line


# ---- metrics ---------------------------------------------------------------------------


def test_metrics_count_requests_by_route_method_and_status(service):
    s = service("kitchen", "--workers", "2")
    for _ in range(3):
        requests.get(f"{s.url}/items/9")
    requests.get(f"{s.url}/items/x")
    requests.delete(f"{s.url}/items/9")
    text = requests.get(f"{s.url}/metrics").text
    assert metric(text, "http_requests_total", route="/items/{id}", method="GET",
                  status="200") == 3
    assert metric(text, "http_requests_total", route="/items/{id}", method="GET",
                  status="422") == 1
    assert metric(text, "http_request_duration_seconds_count", route="/items/{id}",
                  method="GET") == 4
    assert metric(text, "http_request_duration_seconds_bucket", route="/items/{id}",
                  method="GET", le="+Inf") == 4
    assert metric(text, "http_requests_in_flight") >= 1  # this scrape
    assert metric(text, "http_connections_open") >= 1
    assert metric(text, "microc_workers") == 2
    assert metric(text, "microc_fibers_created_total") is not None
    assert metric(text, "process_resident_memory_bytes") > 0
    assert "# TYPE http_request_duration_seconds histogram" in text


def test_metrics_is_valid_prometheus_text(kitchen):
    text = requests.get(f"{kitchen.url}/metrics").text
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                        r'(-?[0-9.e+-]+|\+Inf|NaN)$')
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert sample.match(line), line


def test_readiness_flips_while_draining(service):
    s = service("kitchen", "--workers", "1", "--shutdown-timeout", "10s")
    import concurrent.futures as cf
    import signal
    with cf.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(requests.get, f"{s.url}/sleep?ms=1500", timeout=60)
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        assert slow.result().status_code == 200
    assert s.proc.wait(20 * SLOW) == 0


# ---- hooks and app options -----------------------------------------------------------


def test_app_options_and_defaults_show_in_help():
    import subprocess
    from conftest import binary
    out = subprocess.run([binary("kitchen"), "--help"], capture_output=True,
                         text=True, timeout=10).stdout
    assert "--drain-delay DURATION" in out
    assert "KITCHEN_DRAIN_DELAY" in out
    assert "default 127.0.0.1:8001" in out


def test_ready_hook_runs_once_listening(service):
    s = service("kitchen", "--workers", "2")
    line = s.wait_log(lambda e: e.get("msg") == "kitchen ready")
    assert line["port"] == s.port
    assert line["workers"] == 2


def test_worker_fibers_run_and_are_canceled_at_stop(service):
    s = service("kitchen", "--workers", "2")
    deadline = time.monotonic() + 5 * SLOW
    while requests.get(f"{s.url}/ticks").json()["ticks"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    s.check_clean_exit()  # the ticker fibers unwind, nothing leaks


def test_draining_hook_runs_while_workers_still_serve(service):
    import signal
    s = service("kitchen", "--workers", "1", "--drain-delay", "1500ms")
    s.proc.send_signal(signal.SIGTERM)
    s.wait_log(lambda e: e.get("msg") == "kitchen draining")
    # Not ready any more, but still serving until the hook returns.
    r = requests.get(f"{s.url}/health/ready")
    assert r.status_code == 503
    assert requests.get(f"{s.url}/items/1").status_code == 200
    assert s.proc.wait(20 * SLOW) == 0
    drained = s.wait_log(lambda e: e.get("msg") == "kitchen drained")
    assert drained["rc"] == 0


def test_draining_hook_is_cut_off_at_the_shutdown_timeout(service):
    import signal
    s = service("kitchen", "--workers", "1", "--drain-delay", "60s",
                "--shutdown-timeout", "500ms")
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(20 * SLOW) == 0
    assert time.monotonic() - t0 < 10 * SLOW
    drained = s.wait_log(lambda e: e.get("msg") == "kitchen drained")
    assert drained["rc"] == -10  # MC_ECANCELED


def test_fiber_stack_overflow_faults_loudly(service):
    import signal
    import pytest
    from conftest import SANITIZED
    if SANITIZED:
        pytest.skip("ASan reports the overflow itself")
    s = service("kitchen", "--workers", "1", env={"KITCHEN_ALLOW_OVERFLOW": "1"})
    try:
        requests.get(f"{s.url}/overflow", timeout=10)
    except requests.RequestException:
        pass
    assert s.proc.wait(10) == -signal.SIGSEGV
    assert "fiber stack overflow" in s.log_text()
