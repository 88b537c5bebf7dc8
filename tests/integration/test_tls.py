"""HTTPS: any microc program given --tls-cert and --tls-key speaks TLS
(1.2 and 1.3, ALPN h2 and http/1.1) on its port; checked with Python's ssl and
requests against a certificate made here."""

import socket
import ssl
import subprocess
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import SLOW, Service, binary, parse_responses, tls_args, write_cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return write_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def hello_tls(certs):
    s = Service("hello", *tls_args(certs), "--workers", "2", "--header-timeout", "2s")
    yield s
    s.check_clean_exit()


def ctx(certs, alpn=("http/1.1",)):
    c = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    if alpn:
        c.set_alpn_protocols(list(alpn))
    return c


def tls_connect(certs, port, **kw):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    return ctx(certs, **kw).wrap_socket(raw, server_hostname="localhost")


def read_all(s):
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, ConnectionResetError, socket.timeout):
        pass
    return data


def test_https_get_and_post_with_requests(hello_tls, certs):
    v = str(certs / "cert.pem")
    r = requests.get(f"{hello_tls.url}/hello/tls", verify=v)
    assert r.status_code == 200 and r.json() == {"message": "Hello, tls!"}
    r = requests.post(f"{hello_tls.url}/echo", json={"message": "m", "count": 1}, verify=v)
    assert r.status_code == 200 and r.json()["count"] == 1
    r = requests.post(f"{hello_tls.url}/echo", json={"message": "", "count": 0}, verify=v)
    assert r.status_code == 422 and len(r.json()["errors"]) == 2


def test_alpn_keep_alive_and_pipelining(hello_tls, certs):
    with tls_connect(certs, hello_tls.port) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        reqs = b"".join(b"GET /hello/p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
        s.sendall(reqs + b"GET /hello/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rs = parse_responses(read_all(s))
    assert [r.status for r in rs] == [200] * 6
    assert rs[2].json() == {"message": "Hello, p2!"}
    assert rs[5].header("connection") == "close"


def test_client_without_alpn_is_served(hello_tls, certs):
    with tls_connect(certs, hello_tls.port, alpn=()) as s:
        assert s.selected_alpn_protocol() is None
        s.sendall(b"GET /hello/n HTTP/1.0\r\n\r\n")
        r = parse_responses(read_all(s))[0]
    assert r.status == 200


def test_alpn_prefers_h2_when_offered(hello_tls, certs):
    # HTTP/2 itself is tested in test_h2.py
    with tls_connect(certs, hello_tls.port, alpn=("http/1.1", "h2")) as s:
        assert s.selected_alpn_protocol() == "h2"
    with tls_connect(certs, hello_tls.port, alpn=("spdy/3", "http/1.1")) as s:
        assert s.selected_alpn_protocol() == "http/1.1"


def test_large_bodies_cross_many_records(hello_tls, certs):
    msg = "x" * 200
    body = {"message": msg, "count": 5, "tags": ["t" * 50] * 10}
    r = requests.post(f"{hello_tls.url}/echo", json=body, verify=str(certs / "cert.pem"),
                      headers={"Expect": "100-continue"})
    assert r.status_code == 200 and r.json()["message"] == msg
    # a body over the cap is refused before it is read, through TLS too
    r = requests.post(f"{hello_tls.url}/echo", data=b"x" * (2 << 20),
                      headers={"Content-Type": "application/json"},
                      verify=str(certs / "cert.pem"))
    assert r.status_code == 413


def test_plain_http_to_the_https_port_is_told_so(hello_tls):
    with socket.create_connection(("127.0.0.1", hello_tls.port), timeout=5) as s:
        s.sendall(b"GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n")
        r = parse_responses(read_all(s))[0]
    assert r.status == 400
    assert "HTTPS port" in r.json()["detail"]


def test_garbage_and_bad_handshakes_are_closed_and_the_server_goes_on(hello_tls, certs):
    for junk in (b"\x16\x03\x01\x00\x05hello", b"\x16" + b"\xff" * 300, b"\x00" * 64):
        with socket.create_connection(("127.0.0.1", hello_tls.port), timeout=5) as s:
            s.sendall(junk)
            s.settimeout(5 * SLOW)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
    # a client that does not trust the certificate gives up; the server lives
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{hello_tls.url}/hello/x")
    r = requests.get(f"{hello_tls.url}/hello/after", verify=str(certs / "cert.pem"))
    assert r.status_code == 200


def test_stalled_handshake_is_cut_off(hello_tls):
    with socket.create_connection(("127.0.0.1", hello_tls.port), timeout=10 * SLOW) as s:
        s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        start = time.monotonic()
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert time.monotonic() - start < 8 * SLOW


def test_tls_flags_go_together_and_bad_files_are_refused(certs, tmp_path):
    def run(*args):
        return subprocess.run([binary("hello"), "--listen", "127.0.0.1:0", *args],
                              capture_output=True, text=True, timeout=10 * SLOW)
    r = run("--tls-cert", str(certs / "cert.pem"))
    assert r.returncode == 2 and "go together" in r.stderr
    (tmp_path / "bad.pem").write_text("not a certificate")
    r = run("--tls-cert", str(tmp_path / "bad.pem"), "--tls-key", str(certs / "key.pem"))
    assert r.returncode == 2 and "certificate" in r.stderr
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    r = run("--tls-cert", str(certs / "cert.pem"), "--tls-key", str(tmp_path / "other.pem"))
    assert r.returncode == 2 and "does not match" in r.stderr


def test_gateway_terminates_tls_and_says_https_upstream(certs, tmp_path):
    from conftest import Upstream
    reg = Service("microc-registry", "--data-dir", str(tmp_path / "reg"))
    up = Upstream()
    try:
        requests.put(f"{reg.url}/v1/agent/service/register", json={
            "ID": "raw-1", "Name": "raw", "Address": "127.0.0.1", "Port": up.port,
            "Check": {"TTL": "1h", "Status": "passing"}}).raise_for_status()
        routes = tmp_path / "routes.yaml"
        routes.write_text("routes:\n  - {prefix: /, service: raw, auth: public}\n")
        gw = Service("microc-gateway", *tls_args(certs), "--routes", str(routes),
                     "--registry", reg.url, "--workers", "1")
        try:
            r = requests.get(f"{gw.url}/headers", verify=str(certs / "cert.pem"))
            assert r.status_code == 200, r.text
            assert r.json()["headers"]["x-forwarded-proto"] == "https"
        finally:
            gw.check_clean_exit()
    finally:
        up.close()
        reg.check_clean_exit()
