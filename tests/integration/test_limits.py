"""Timeouts, slow and idle clients, running out of descriptors, and
shutting down: the server stays up and answers real clients throughout."""

import concurrent.futures
import resource
import signal
import socket
import time

import requests

from conftest import SLOW, connect, one_response, read_until_closed


def test_slow_request_head_gets_408(service):
    s = service("hello", "--workers", "1", "--header-timeout", "500ms")
    with connect(s.port) as c:
        c.sendall(b"GET /hello/x HTTP/1.1\r\nHost: t\r\n")
        r = one_response(read_until_closed(c, timeout=10))
    assert r.status == 408
    assert r.header("connection") == "close"
    assert r.json()["status"] == 408


def test_byte_a_second_slowloris_is_cut_off(service):
    # Progress does not extend the head deadline.
    s = service("hello", "--workers", "1", "--header-timeout", "1s")
    with connect(s.port) as c:
        t0 = time.monotonic()
        req = b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100
        closed = False
        for byte in req:
            try:
                c.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > 5 * SLOW:
                break
        data = read_until_closed(c, timeout=5)
    assert closed or data.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - t0 < 6 * SLOW


def test_stalled_body_gets_408(service):
    s = service("hello", "--workers", "1", "--body-timeout", "500ms")
    with connect(s.port) as c:
        c.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"mess")
        r = one_response(read_until_closed(c, timeout=10))
    assert r.status == 408


def test_idle_keep_alive_connection_is_closed(service):
    s = service("hello", "--workers", "1", "--idle-timeout", "300ms")
    with connect(s.port) as c:
        c.sendall(b"GET /hello/x HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_closed(c, timeout=10)
    assert one_response(data).status == 200  # then closed by the server, no error


def test_idle_connection_that_never_speaks_is_closed(service):
    s = service("hello", "--workers", "1", "--idle-timeout", "300ms")
    with connect(s.port) as c:
        assert read_until_closed(c, timeout=10) == b""


def test_hundreds_of_idle_and_half_sent_connections_do_not_starve_a_client(service):
    s = service("hello", "--workers", "2")
    socks = []
    try:
        for i in range(600):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            if i % 2:
                c.sendall(b"GET /hello/x HTTP/1.1\r\nHost: t\r\nX-Half: ")
            socks.append(c)
        t0 = time.monotonic()
        for _ in range(20):
            r = requests.get(f"{s.url}/hello/real", timeout=10)
            assert r.json() == {"message": "Hello, real!"}
        assert time.monotonic() - t0 < 5 * SLOW
        text = requests.get(f"{s.url}/metrics").text
        open_line = [l for l in text.splitlines() if l.startswith("http_connections_open ")]
        assert float(open_line[0].split()[1]) >= 600
    finally:
        for c in socks:
            c.close()


def test_max_connections_cap_closes_extra_connections(service):
    s = service("hello", "--workers", "1", "--max-connections", "10")
    socks = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(10)]
    try:
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", s.port))
        extra.sendall(b"GET /hello/x HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_until_closed(extra, timeout=5) == b""
        extra.close()
    finally:
        for c in socks:
            c.close()
    time.sleep(0.2)
    assert requests.get(f"{s.url}/hello/after").status_code == 200


def test_out_of_descriptors_backs_off_and_recovers(service):
    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    s = service("hello", "--workers", "1", "--max-connections", "0",
                preexec_fn=low_fd_limit)
    socks = []
    try:
        for _ in range(120):
            socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        time.sleep(0.5)
        assert s.alive()
    finally:
        for c in socks:
            c.close()
    # Once descriptors are free again, a real client is served.
    deadline = time.monotonic() + 10 * SLOW
    while True:
        try:
            r = requests.get(f"{s.url}/hello/back", timeout=5)
            break
        except requests.RequestException:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert r.json() == {"message": "Hello, back!"}
    text = requests.get(f"{s.url}/metrics").text
    errors = [l for l in text.splitlines() if l.startswith("http_accept_errors_total ")]
    assert float(errors[0].split()[1]) > 0
    s.wait_log(lambda e: e.get("msg") == "accept failed; backing off")


def test_sigterm_finishes_in_flight_requests_and_exits_0(service):
    s = service("kitchen", "--workers", "2", "--shutdown-timeout", "10s")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(requests.get, f"{s.url}/sleep?ms=1500", timeout=60)
                for _ in range(4)]
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        rs = [f.result() for f in futs]
    assert [r.status_code for r in rs] == [200] * 4
    # In-flight answers say the connection is closing.
    assert all(r.headers.get("connection") == "close" for r in rs)
    assert s.proc.wait(20 * SLOW) == 0
    # After shutdown nobody listens.
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused


def test_sigterm_deadline_cuts_off_stuck_requests(service):
    s = service("kitchen", "--workers", "1", "--shutdown-timeout", "500ms")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(requests.get, f"{s.url}/sleep?ms=30000", timeout=60)
        time.sleep(0.3)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        code = s.proc.wait(20 * SLOW)
        took = time.monotonic() - t0
        try:
            fut.result()
        except requests.RequestException:
            pass
    assert code == 0
    assert took < 10 * SLOW


def test_idle_keep_alive_connections_do_not_delay_shutdown(service):
    s = service("hello", "--workers", "2")
    socks = [connect(s.port) for _ in range(20)]
    for c in socks:
        c.sendall(b"GET /hello/x HTTP/1.1\r\nHost: t\r\n\r\n")
        c.recv(4096)
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < 5 * SLOW
    for c in socks:
        c.close()


def test_sigint_also_drains(service):
    s = service("hello", "--workers", "1")
    assert requests.get(f"{s.url}/hello/x").status_code == 200
    assert s.stop(signal.SIGINT) == 0


def test_second_sigterm_does_not_kill_a_draining_service(service):
    # Regression: the first signal used to restore the default action.
    s = service("kitchen", "--workers", "1", "--shutdown-timeout", "10s")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(requests.get, f"{s.url}/sleep?ms=1500", timeout=60)
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        s.proc.send_signal(signal.SIGTERM)
        assert fut.result().status_code == 200
    assert s.proc.wait(20 * SLOW) == 0


def test_sigterm_storm_through_the_teardown_still_exits_0(service):
    # Regression: closing the signal watchers at the end of the teardown
    # gave SIGTERM back its default action, so a repeated SIGTERM (as a
    # supervisor sends) killed a process that was about to exit 0.
    for _ in range(10):
        s = service("hello", "--workers", "2")
        s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20 * SLOW
        while s.proc.poll() is None and time.monotonic() < deadline:
            try:
                s.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                break
            time.sleep(0.0001)
        assert s.proc.wait(10) == 0
