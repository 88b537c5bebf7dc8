"""Discovery end to end: services register themselves with microc-registry,
kitchen calls hello by name, and instances die under it."""

import collections
import concurrent.futures
import re
import signal
import threading
import time

import pytest
import requests

from conftest import SLOW, Service, wait_for, metric


class System:
    """A registry, n hello instances registered in it, and a kitchen that
    calls them by name."""

    def __init__(self, tmp_path, n=3, kitchen_args=()):
        self.reg_dir = str(tmp_path / "reg")
        self.registry = Service("microc-registry", "--data-dir", self.reg_dir)
        self.reg = self.registry.url
        self.hellos = [self.start_hello() for _ in range(n)]
        self.kitchen = Service("kitchen", "--workers", "1", "--registry", self.reg,
                               *kitchen_args)
        wait_for(lambda: len(self.passing("hello")) == n, what=f"{n} passing hellos")

    def start_hello(self, listen="127.0.0.1:0"):
        return Service("hello", "--workers", "1", "--registry", self.reg,
                       "--check-interval", "1s", "--service-tags", "v1,blue",
                       listen=listen)

    def passing(self, name):
        r = requests.get(f"{self.reg}/v1/health/service/{name}?passing")
        return [e["Service"]["ID"] for e in r.json()]

    def call(self, path="/hello/x", **params):
        r = requests.get(f"{self.kitchen.url}/call",
                         params={"service": "hello", "path": path, **params}, timeout=30)
        return r.json()

    def close(self):
        for s in [self.kitchen, *self.hellos]:
            if s.alive():
                s.check_clean_exit()
        self.registry.check_clean_exit()


@pytest.fixture
def system(tmp_path):
    s = System(tmp_path)
    yield s
    s.close()


def test_services_register_themselves(system):
    r = requests.get(f"{system.reg}/v1/health/service/hello").json()
    assert len(r) == 3
    for e in r:
        svc = e["Service"]
        assert svc["ID"] == f"hello-127.0.0.1-{svc['Port']}"
        assert svc["Address"] == "127.0.0.1"
        assert svc["Tags"] == ["v1", "blue"]
        assert svc["Meta"]["microc"]
        http = [c for c in e["Checks"] if c["CheckID"] != "serfHealth"][0]
        assert http["Type"] == "http" and http["Interval"] == "1s"
        assert http["Output"].endswith('Output: {"status":"ready"}')


def test_calls_by_name_spread_over_instances(system):
    served = collections.Counter()
    for _ in range(30):
        out = system.call()
        assert out["status"] == 200, out
        assert out["body"] == '{"message":"Hello, x!"}'
        served[out["served_by"]] += 1
    assert len(served) == 3, served
    assert max(served.values()) - min(served.values()) <= 1, "round robin"


def test_unknown_service_is_unavailable(system):
    r = requests.get(f"{system.kitchen.url}/call", params={"service": "nobody"})
    assert r.json()["error"] == "MC_EUNAVAILABLE"


def test_sigterm_deregisters_before_draining(system):
    victim = system.hellos[0]
    vid = f"hello-127.0.0.1-{victim.port}"
    assert vid in system.passing("hello")
    assert victim.stop() == 0
    # gone at once: deregistered, not waiting for a failing check
    assert vid not in requests.get(f"{system.reg}/v1/agent/services").json()
    victim.wait_log(lambda e: e.get("msg") == "deregistered")
    for _ in range(10):
        out = system.call()
        assert out["status"] == 200 and out["served_by"] != vid


def test_kill_9_under_load_no_failed_calls_breaker_opens_then_closes(system):
    victim = system.hellos[1]
    vid = f"hello-127.0.0.1-{victim.port}"
    port = victim.port
    results = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            out = system.call()
            results.append((time.monotonic(), out))

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        victim.kill()  # kill -9: no deregistration
        killed_at = time.monotonic()
        wait_for(lambda: vid not in system.passing("hello"), what="check to fail")
        out_at = time.monotonic()
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    failed = [o for _, o in results if o["status"] != 200]
    assert not failed, f"{len(failed)} failed calls: {failed[:3]}"
    after = [o for t, o in results if t > out_at + 0.5]
    assert after and all(o["served_by"] != vid for o in after)
    text = requests.get(f"{system.kitchen.url}/metrics").text
    assert metric(text, "microc_upstream_retries_total", service="hello") > 0
    assert metric(text, "microc_breaker_opened_total", service="hello", instance=vid) >= 1
    assert len(results) > 50
    # The instance comes back on the same port: it registers again, and the
    # breaker half-opens, lets a probe through and closes.
    system.hellos[1] = system.start_hello(listen=f"127.0.0.1:{port}")
    wait_for(lambda: vid in system.passing("hello"), what="re-registration")
    seen = set()

    def closed_and_used():
        seen.add(system.call()["served_by"])
        text = requests.get(f"{system.kitchen.url}/metrics").text
        return vid in seen and metric(text, "microc_breaker_open", service="hello",
                                      instance=vid) == 0
    wait_for(closed_and_used, timeout=30, what="breaker to close and calls to return")


def test_non_idempotent_calls_retry_only_refused_connections(system, upstream):
    # A POST is retried when the connection was refused (it never left)...
    victim = system.hellos[2]
    vid = f"hello-127.0.0.1-{victim.port}"
    victim.kill()
    outs = [system.call(path="/echo", method="POST", body='{"message":"m","count":1}')
            for _ in range(6)]
    assert all(o["status"] in (200, 415) for o in outs), outs
    assert not any(o["error"] for o in outs)


def test_registry_down_keeps_last_known_instances(system):
    assert system.call()["status"] == 200
    system.registry.check_clean_exit()
    for _ in range(20):
        out = system.call()
        assert out["status"] == 200, out
    text = wait_for(lambda: (t := requests.get(f"{system.kitchen.url}/metrics").text)
                    and metric(t, "microc_registry_up") == 0 and t,
                    what="registry_up 0")
    assert metric(text, "microc_registry_watch_errors_total") >= 1
    system.kitchen.wait_log(lambda e: e.get("msg") ==
                            "registry unreachable; keeping the last known instances")
    # Bring it back on the same port with the same data.
    port = int(system.reg.rsplit(":", 1)[1])
    system.registry = Service("microc-registry", "--data-dir", system.reg_dir,
                              listen=f"127.0.0.1:{port}")
    wait_for(lambda: metric(requests.get(f"{system.kitchen.url}/metrics").text,
                            "microc_registry_up") == 1, what="registry_up 1")
    assert system.call()["status"] == 200


def test_retry_budget_bounds_retries(tmp_path, upstream):
    reg = Service("microc-registry", "--data-dir", str(tmp_path / "r"))
    kitchen = Service("kitchen", "--workers", "1", "--registry", reg.url)
    try:
        for i in range(2):
            requests.put(f"{reg.url}/v1/agent/service/register", json={
                "Name": "bad", "ID": f"bad-{i}", "Address": "127.0.0.1",
                "Port": upstream.port, "Check": {"TTL": "60s", "Status": "passing"}})
        n = 200
        for _ in range(n):
            r = requests.get(f"{kitchen.url}/call",
                             params={"service": "bad", "path": "/status?code=503"})
            out = r.json()
            # 503s open the breakers, so later calls are refused outright
            assert out["status"] == 503 or out["error"] == "MC_EUNAVAILABLE", out
        text = requests.get(f"{kitchen.url}/metrics").text
        retries = metric(text, "microc_upstream_retries_total", service="bad")
        assert metric(text, "microc_upstream_calls_total", service="bad") == n
        # at most 20% of the calls, plus the floor of 10 a second
        assert retries <= 0.2 * n + 10 * (10 * SLOW) + 2, retries
        assert metric(text, "microc_breaker_opened_total", service="bad",
                      instance="bad-0") >= 1
    finally:
        kitchen.check_clean_exit()
        reg.check_clean_exit()


def test_bad_registry_flag_exits_2():
    import subprocess
    from conftest import binary
    out = subprocess.run([binary("hello"), "--registry", "ftp://x"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "--registry" in out.stderr
