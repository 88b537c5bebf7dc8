"""HTTPS: any microc program given --tls-cert and --tls-key speaks TLS
(1.2 and 1.3, ALPN h2 and http/1.1) on its port; checked with Python's ssl and
requests against a certificate made here."""

import datetime
import ipaddress
import socket
import ssl
import subprocess
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SLOW, Service, binary, parse_responses


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return d


class TlsService(Service):
    """Service prints "listening on https://...": the base class waits for
    http://, so read the port ourselves."""

    def __init__(self, name, certs, *args, **kw):
        import os
        import select
        import tempfile
        self.name = name
        self.logfile = tempfile.NamedTemporaryFile(prefix=f"microc-{name}-", suffix=".log",
                                                   delete=False)
        cmd = [binary(name), "--listen", "127.0.0.1:0",
               "--tls-cert", str(certs / "cert.pem"), "--tls-key", str(certs / "key.pem"),
               *args]
        env = dict(os.environ)
        env.update(kw.get("env") or {})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.logfile, env=env)
        line = b""
        deadline = time.monotonic() + 10 * SLOW
        while b"\n" not in line and time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
        text = line.decode()
        assert text.startswith("listening on https://"), (text, self.log_text())
        self.port = int(text.strip().rsplit(":", 1)[1])
        self.host = "127.0.0.1"
        self.url = f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def hello_tls(certs):
    s = TlsService("hello", certs, "--workers", "2", "--header-timeout", "2s")
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
        gw = TlsService("microc-gateway", certs, "--routes", str(routes),
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
