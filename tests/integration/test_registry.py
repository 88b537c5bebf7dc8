"""microc-registry against real Consul clients: Debian's python-consul, and
raw requests shaped as Consul clients send them."""

import concurrent.futures
import json
import signal
import time

import consul
import pytest
import requests

from conftest import SLOW, Service, wait_for


@pytest.fixture
def registry(tmp_path):
    s = Service("microc-registry", "--data-dir", str(tmp_path / "data"))
    s.data_dir = tmp_path / "data"
    yield s
    s.check_clean_exit()


def client(reg):
    return consul.Consul(host="127.0.0.1", port=reg.port)


def health(reg, name, **params):
    r = requests.get(f"{reg.url}/v1/health/service/{name}", params=params)
    assert r.status_code == 200
    return r


def statuses(reg, name):
    return {e["Service"]["ID"]: [c["Status"] for c in e["Checks"]]
            for e in health(reg, name).json()}


# ---- python-consul, as the tutorials use it ------------------------------------------


def test_python_consul_register_discover_deregister(registry, hello):
    c = client(registry)
    assert c.agent.self()["Config"]["Datacenter"] == "dc1"
    assert c.agent.service.register(
        "hello", service_id="hello-1", address="127.0.0.1", port=hello.port,
        tags=["v1", "blue"],
        check=consul.Check.http(f"{hello.url}/health/ready", "1s", timeout="1s"))
    wait_for(lambda: c.health.service("hello", passing=True)[1], what="passing")
    index, nodes = c.health.service("hello", passing=True)
    assert int(index) > 0
    (entry,) = nodes
    assert entry["Service"]["ID"] == "hello-1"
    assert entry["Service"]["Address"] == "127.0.0.1"
    assert entry["Service"]["Port"] == hello.port
    assert entry["Service"]["Tags"] == ["v1", "blue"]
    assert entry["Node"]["Node"] and entry["Node"]["Address"] == "127.0.0.1"
    checks = {ch["CheckID"]: ch for ch in entry["Checks"]}
    assert checks["serfHealth"]["Status"] == "passing"
    http = checks["service:hello-1"]
    assert http["Status"] == "passing" and http["Type"] == "http"
    assert http["Output"].startswith(f"HTTP GET {hello.url}/health/ready: 200 OK")
    assert c.agent.services()["hello-1"]["Service"] == "hello"
    assert c.agent.checks()["service:hello-1"]["ServiceName"] == "hello"
    assert c.catalog.services()[1] == {"hello": ["v1", "blue"]}
    (cs,) = c.catalog.service("hello")[1]
    assert cs["ServiceID"] == "hello-1" and cs["ServicePort"] == hello.port
    assert c.catalog.datacenters() == ["dc1"]
    assert c.status.leader()
    assert c.status.peers()
    assert c.agent.service.deregister("hello-1")
    assert c.health.service("hello")[1] == []
    assert c.agent.services() == {}


def test_python_consul_ttl_checks(registry):
    c = client(registry)
    c.agent.service.register("worker", service_id="w1", check=consul.Check.ttl("2s"))
    assert statuses(registry, "worker")["w1"][1] == "critical", "new checks start critical"
    c.agent.check.ttl_pass("service:w1", "working")
    (chk,) = c.health.checks("worker")[1]
    assert chk["Status"] == "passing" and chk["Output"] == "working"
    assert chk["Type"] == "ttl"
    c.agent.check.ttl_warn("service:w1", "slow")
    assert c.health.checks("worker")[1][0]["Status"] == "warning"
    c.agent.check.ttl_pass("service:w1")
    # No heartbeat: the TTL runs out.
    time.sleep(2.5)
    (chk,) = c.health.checks("worker")[1]
    assert chk["Status"] == "critical"
    assert chk["Output"] == "TTL expired"


def test_python_consul_blocking_query(registry):
    c = client(registry)
    c.agent.service.register("watched", service_id="w1", port=1)
    index, _ = c.health.service("watched")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        fut = pool.submit(c.health.service, "watched", index=index, wait="30s")
        time.sleep(0.5)
        assert not fut.done(), "a blocking query returns on a change, not before"
        c.agent.service.register("watched", service_id="w2", port=2)
        new_index, nodes = fut.result(timeout=10)
        assert time.monotonic() - t0 < 5 * SLOW
    assert int(new_index) > int(index)
    assert sorted(n["Service"]["ID"] for n in nodes) == ["w1", "w2"]


# ---- raw requests, as other clients send them ----------------------------------------


def put(reg, path, body=None, **params):
    return requests.put(f"{reg.url}{path}", params=params,
                        data=None if body is None else json.dumps(body))


def test_keys_in_any_case_and_snake_case(registry):
    r = put(registry, "/v1/agent/service/register", {
        "NAME": "mixed", "id": "m1", "Port": 9, "enable_tag_override": True,
        "Checks": [{"ttl": "30s", "check_id": "beat", "Status": "passing",
                    "deregister_critical_service_after": "1m"}]})
    assert r.status_code == 200, r.text
    chk = requests.get(f"{registry.url}/v1/agent/checks").json()["beat"]
    assert chk["Status"] == "passing" and chk["ServiceID"] == "m1"


def test_several_checks_get_consul_ids(registry, hello):
    r = put(registry, "/v1/agent/service/register", {
        "Name": "multi", "ID": "mu", "Port": hello.port,
        "Check": {"TTL": "30s"},
        "Checks": [{"HTTP": f"{hello.url}/health/live", "Interval": "1s"},
                   {"TCP": f"127.0.0.1:{hello.port}", "Interval": "1s"}]})
    assert r.status_code == 200, r.text
    ids = sorted(requests.get(f"{registry.url}/v1/agent/checks").json())
    assert ids == ["service:mu:1", "service:mu:2", "service:mu:3"]
    wait_for(lambda: requests.get(f"{registry.url}/v1/agent/checks").json()
             ["service:mu:3"]["Status"] == "passing", what="tcp check")
    out = requests.get(f"{registry.url}/v1/agent/checks").json()["service:mu:3"]
    assert out["Type"] == "tcp" and "Success" in out["Output"]


def test_reads_carry_consul_headers_and_empty_results(registry):
    for path in ("/v1/health/service/nothing", "/v1/catalog/service/nothing",
                 "/v1/health/checks/nothing", "/v1/catalog/services",
                 "/v1/agent/services", "/v1/agent/checks", "/v1/status/leader",
                 "/v1/health/state/critical"):
        r = requests.get(f"{registry.url}{path}")
        assert r.status_code == 200, path
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["x-consul-index"]) > 0, path
        assert r.headers["x-consul-knownleader"] == "true"
        assert "x-consul-lastcontact" in r.headers
    assert requests.get(f"{registry.url}/v1/health/service/nothing").json() == []
    assert requests.get(f"{registry.url}/v1/catalog/services").json() == {}


def test_failing_http_check_leaves_passing_within_its_interval(registry, upstream):
    r = put(registry, "/v1/agent/service/register", {
        "Name": "flaky", "ID": "f1", "Address": "127.0.0.1", "Port": upstream.port,
        "Check": {"HTTP": f"{upstream.url}/ok", "Interval": "1s"}})
    assert r.status_code == 200
    wait_for(lambda: health(registry, "flaky", passing="").json(), what="passing")
    # The instance starts failing: 503 is critical, and within about one
    # interval it is gone from ?passing.
    put(registry, "/v1/agent/service/register", {
        "Name": "flaky", "ID": "f1", "Address": "127.0.0.1", "Port": upstream.port,
        "Check": {"HTTP": f"{upstream.url}/status?code=503", "Interval": "1s"}})
    t0 = time.monotonic()
    wait_for(lambda: health(registry, "flaky", passing="").json() == [],
             timeout=3, what="removal from ?passing")
    assert time.monotonic() - t0 <= 2.5 * SLOW
    assert statuses(registry, "flaky")["f1"][1] == "critical"


def test_429_is_warning(registry, upstream):
    put(registry, "/v1/agent/service/register", {
        "Name": "busy", "Port": 1,
        "Check": {"HTTP": f"{upstream.url}/status?code=429", "Interval": "1s"}})
    wait_for(lambda: statuses(registry, "busy")["busy"][1] == "warning",
             what="warning")
    assert health(registry, "busy", passing="1").json() == []
    assert len(health(registry, "busy", passing="false").json()) == 1


def test_tcp_check_of_a_dead_port_is_critical(registry):
    put(registry, "/v1/agent/service/register", {
        "Name": "dead", "Port": 1, "Check": {"TCP": "127.0.0.1:1", "Interval": "1s",
                                             "Status": "passing"}})
    wait_for(lambda: statuses(registry, "dead")["dead"][1] == "critical", what="critical")


def test_tag_filters(registry):
    for i, tags in enumerate((["a", "b"], ["a"], ["c"])):
        put(registry, "/v1/agent/service/register",
            {"Name": "tagged", "ID": f"t{i}", "Port": i + 1, "Tags": tags})
    ids = lambda **p: sorted(e["Service"]["ID"] for e in health(registry, "tagged", **p).json())
    assert ids(tag="a") == ["t0", "t1"]
    r = requests.get(f"{registry.url}/v1/health/service/tagged?tag=a&tag=b")
    assert [e["Service"]["ID"] for e in r.json()] == ["t0"]
    r = requests.get(f"{registry.url}/v1/catalog/service/tagged?tag=c")
    assert [e["ServiceID"] for e in r.json()] == ["t2"]
    assert sorted(requests.get(f"{registry.url}/v1/catalog/services").json()["tagged"]) == \
        ["a", "b", "c"]


def test_blocking_query_wakes_only_for_its_own_service(registry):
    put(registry, "/v1/agent/service/register", {"Name": "mine", "Port": 1})
    idx = health(registry, "mine").headers["x-consul-index"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(requests.get, f"{registry.url}/v1/health/service/mine",
                          params={"index": idx, "wait": "3s"})
        time.sleep(0.3)
        # Changes elsewhere do not answer this query.
        put(registry, "/v1/agent/service/register", {"Name": "other", "Port": 2})
        put(registry, "/v1/agent/service/register", {"Name": "other", "ID": "o2", "Port": 3})
        time.sleep(0.5)
        assert not fut.done()
        r = fut.result(timeout=10)
    assert r.headers["x-consul-index"] == idx, "timed out with the same index"


def test_blocking_query_wait_syntax(registry):
    put(registry, "/v1/agent/service/register", {"Name": "w", "Port": 1})
    idx = health(registry, "w").headers["x-consul-index"]
    for wait in ("1s", "1000ms", "0m1s"):
        t0 = time.monotonic()
        r = requests.get(f"{registry.url}/v1/health/service/w",
                         params={"index": idx, "wait": wait})
        took = time.monotonic() - t0
        assert r.status_code == 200
        assert 0.9 <= took <= 3 * SLOW, (wait, took)
    r = requests.get(f"{registry.url}/v1/health/service/w", params={"index": idx, "wait": "later"})
    assert r.status_code == 400


def test_deregister_critical_service_after(registry):
    put(registry, "/v1/agent/service/register", {
        "Name": "doomed", "Port": 1,
        "Check": {"TCP": "127.0.0.1:1", "Interval": "1s",
                  "DeregisterCriticalServiceAfter": "2s"}})
    assert "doomed" in requests.get(f"{registry.url}/v1/agent/services").json()
    wait_for(lambda: "doomed" not in requests.get(f"{registry.url}/v1/agent/services").json(),
             timeout=8, what="deregistration")
    assert requests.get(f"{registry.url}/v1/agent/checks").json() == {}


def test_replace_existing_checks(registry):
    put(registry, "/v1/agent/service/register", {
        "Name": "r", "Checks": [{"TTL": "30s", "CheckID": "a"}, {"TTL": "30s", "CheckID": "b"}]})
    put(registry, "/v1/agent/service/register", {"Name": "r", "Check": {"TTL": "30s", "CheckID": "a"}})
    assert sorted(requests.get(f"{registry.url}/v1/agent/checks").json()) == ["a", "b"]
    put(registry, "/v1/agent/service/register",
        {"Name": "r", "Check": {"TTL": "30s", "CheckID": "a"}}, **{"replace-existing-checks": "true"})
    assert sorted(requests.get(f"{registry.url}/v1/agent/checks").json()) == ["a"]


def test_check_register_update_and_deregister(registry):
    put(registry, "/v1/agent/service/register", {"Name": "s", "Port": 1})
    r = put(registry, "/v1/agent/check/register",
            {"Name": "disk", "ServiceID": "s", "TTL": "10s"})
    assert r.status_code == 200, r.text
    r = put(registry, "/v1/agent/check/update/disk", {"Status": "warning", "Output": "80% full"})
    assert r.status_code == 200
    chk = requests.get(f"{registry.url}/v1/agent/checks").json()["disk"]
    assert (chk["Status"], chk["Output"], chk["ServiceID"]) == ("warning", "80% full", "s")
    assert put(registry, "/v1/agent/check/deregister/disk").status_code == 200
    assert "disk" not in requests.get(f"{registry.url}/v1/agent/checks").json()


def test_health_state(registry):
    put(registry, "/v1/agent/service/register",
        {"Name": "a", "Check": {"TTL": "30s", "Status": "passing"}})
    put(registry, "/v1/agent/service/register", {"Name": "b", "Check": {"TTL": "30s"}})
    crit = requests.get(f"{registry.url}/v1/health/state/critical").json()
    assert [c["ServiceID"] for c in crit] == ["b"]
    anyc = requests.get(f"{registry.url}/v1/health/state/any").json()
    assert {c["CheckID"] for c in anyc} == {"serfHealth", "service:a", "service:b"}
    assert requests.get(f"{registry.url}/v1/health/state/bogus").status_code == 400


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("body,status,text", [
    ("{not json", 400, "Request decode failed"),
    ('{"Port": 80}', 400, "Missing service name"),
    ('["list"]', 400, "Request decode failed"),
    ('{"Name": "x", "Port": "eighty"}', 400, "Request decode failed"),
    ('{"Name": "x", "Check": {"HTTP": "http://h/", "Interval": "-5s"}}', 400,
     "Interval must be > 0"),
    ('{"Name": "x", "Check": {"HTTP": "http://h/", "Interval": "whenever"}}', 400,
     "invalid duration"),
    ('{"Name": "x", "Check": {"TTL": "0s"}}', 400, "TTL must be > 0"),
    ('{"Name": "x", "Check": {"Args": ["/bin/sh"], "Interval": "1s"}}', 400,
     "Scripts are disabled"),
    ('{"Name": "x", "Check": {"TTL": "5s", "Status": "fine"}}', 400, "Invalid check status"),
    ('{"Name": "x", "Meta": {"has space": "v"}}', 400, "Invalid Service Meta"),
])
def test_bad_registrations_get_consuls_answers(registry, body, status, text):
    before = requests.get(f"{registry.url}/v1/agent/services").json()
    r = requests.put(f"{registry.url}/v1/agent/service/register", data=body)
    assert r.status_code == status
    assert text in r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert requests.get(f"{registry.url}/v1/agent/services").json() == before


def test_unknown_ids(registry):
    r = put(registry, "/v1/agent/service/deregister/ghost")
    assert r.status_code == 404 and 'Unknown service ID "ghost"' in r.text
    for verb in ("pass", "warn", "fail"):
        r = put(registry, f"/v1/agent/check/{verb}/ghost")
        assert r.status_code == 404 and "Unknown check ID" in r.text
    put(registry, "/v1/agent/service/register",
        {"Name": "h", "Check": {"TCP": "127.0.0.1:1", "Interval": "10s"}})
    r = put(registry, "/v1/agent/check/pass/service:h")
    assert r.status_code == 500 and "does not have associated TTL" in r.text


def test_other_datacenters_and_filters(registry):
    r = requests.get(f"{registry.url}/v1/health/service/x?dc=elsewhere")
    assert r.status_code == 500 and "No path to datacenter" in r.text
    assert requests.get(f"{registry.url}/v1/health/service/x?dc=dc1").status_code == 200
    assert requests.get(f"{registry.url}/v1/health/service/x?filter=a").status_code == 400


# ---- restarts, shutdown, the page ------------------------------------------------------------


def test_restart_keeps_registrations_checks_and_index(tmp_path):
    data = str(tmp_path / "data")
    reg = Service("microc-registry", "--data-dir", data)
    put(reg, "/v1/agent/service/register", {
        "Name": "kept", "ID": "k1", "Address": "10.0.0.9", "Port": 7, "Tags": ["x"],
        "Meta": {"zone": "a"}, "Check": {"TTL": "60s", "CheckID": "hb"}})
    put(reg, "/v1/agent/check/warn/hb", note="degraded")
    index = int(health(reg, "kept").headers["x-consul-index"])
    port = reg.port
    reg.check_clean_exit()
    reg = Service("microc-registry", "--data-dir", data, listen=f"127.0.0.1:{port}")
    try:
        (e,) = health(reg, "kept").json()
        assert e["Service"]["ID"] == "k1" and e["Service"]["Address"] == "10.0.0.9"
        assert e["Service"]["Meta"] == {"zone": "a"}
        hb = [c for c in e["Checks"] if c["CheckID"] == "hb"][0]
        assert (hb["Status"], hb["Output"]) == ("warning", "degraded")
        assert int(health(reg, "kept").headers["x-consul-index"]) >= index
        put(reg, "/v1/agent/service/register", {"Name": "later", "Port": 1})
        assert int(requests.get(f"{reg.url}/v1/catalog/services").headers["x-consul-index"]) > index
    finally:
        reg.check_clean_exit()


def test_shutdown_answers_blocking_queries_at_once(tmp_path):
    reg = Service("microc-registry", "--data-dir", str(tmp_path / "d"))
    idx = health(reg, "none").headers["x-consul-index"]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futs = [pool.submit(requests.get, f"{reg.url}/v1/health/service/none",
                            params={"index": idx, "wait": "5m"}) for _ in range(3)]
        time.sleep(0.3)
        t0 = time.monotonic()
        reg.proc.send_signal(signal.SIGTERM)
        assert all(f.result(timeout=20).status_code == 200 for f in futs)
    assert reg.proc.wait(20) == 0
    assert time.monotonic() - t0 < 5 * SLOW


def test_page_for_people(registry):
    r = requests.get(f"{registry.url}/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "microc-registry" in r.text and "/v1/health/state/any" in r.text


def test_metrics(registry):
    put(registry, "/v1/agent/service/register", {"Name": "m", "Check": {"TTL": "30s"}})
    text = requests.get(f"{registry.url}/metrics").text
    assert "microc_registry_services 1" in text
    assert 'microc_registry_checks{status="critical"} 1' in text


def test_grpc_checks_against_a_grpc_server(registry):
    from test_grpc_health import GrpcServer, NOT_SERVING, SERVING
    server = GrpcServer({"": SERVING, "orders": SERVING, "payments": NOT_SERVING})
    try:
        for name, target in (("whole", f"127.0.0.1:{server.port}"),
                             ("orders", f"127.0.0.1:{server.port}/orders"),
                             ("payments", f"127.0.0.1:{server.port}/payments"),
                             ("ghost", f"127.0.0.1:{server.port}/ghost")):
            r = put(registry, "/v1/agent/service/register", {
                "Name": name, "Port": server.port,
                "Check": {"GRPC": target, "Interval": "1s"}})
            assert r.status_code == 200, r.text
        want = {"whole": "passing", "orders": "passing", "payments": "critical",
                "ghost": "critical"}
        got = lambda: {n: statuses(registry, n)[n][1] for n in want}
        wait_for(lambda: got() == want and all(
            requests.get(f"{registry.url}/v1/agent/checks").json()[f"service:{n}"]["Output"]
            for n in want), what=f"gRPC statuses {want}")
        checks = requests.get(f"{registry.url}/v1/agent/checks").json()
        assert checks["service:orders"]["Type"] == "grpc"
        assert checks["service:orders"]["Output"].endswith(": success")
    finally:
        server.stop()
