"""Fixtures for the integration tests: real binaries on loopback ports
chosen at run time, talked to with requests and with raw sockets."""

import json
import os
import pathlib
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("MICROC_BIN_DIR", ROOT / "build" / "bin"))
TEST_BIN_DIR = pathlib.Path(
    os.environ.get("MICROC_TEST_BIN_DIR", ROOT / "build" / "tests" / "bin"))
SANITIZED = os.environ.get("MICROC_SANITIZED", "").lower() in ("1", "on", "true")
# Sanitized binaries are several times slower; waits scale with this.
SLOW = 4 if SANITIZED else 1


def binary(name):
    for d in (BIN_DIR, TEST_BIN_DIR):
        p = d / name
        if p.exists():
            return str(p)
    raise FileNotFoundError(f"{name} is not built (looked in {BIN_DIR} and {TEST_BIN_DIR})")


def wait_for(pred, timeout=15, what="condition"):
    """Polls pred until it gives something true, which it returns."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def metric(text, name, **labels):
    """The value of one sample in Prometheus text, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return None


def rss_kib(pid):
    """A process's resident memory, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def write_cert(d):
    """A self-signed P-256 certificate for localhost and 127.0.0.1, as
    d/cert.pem and d/key.pem; returns d."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
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


def tls_args(d):
    """The flags that serve HTTPS with write_cert(d)'s files."""
    return ["--tls-cert", str(d / "cert.pem"), "--tls-key", str(d / "key.pem")]


class Service:
    """A microc program started for real. Its stderr (JSON log lines) goes
    to a file so tests can read what it logged."""

    def __init__(self, name, *args, env=None, listen="127.0.0.1:0",
                 preexec_fn=None, ready_timeout=10):
        self.name = name
        self.logfile = tempfile.NamedTemporaryFile(
            prefix=f"microc-{name}-", suffix=".log", delete=False)
        full_env = dict(os.environ)
        full_env.pop("MICROC_LISTEN", None)
        full_env.update(env or {})
        cmd = [binary(name)]
        if listen:
            cmd += ["--listen", listen]
        cmd += list(args)
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.logfile, env=full_env,
            preexec_fn=preexec_fn)
        self.stdout = b""
        self.port = None
        deadline = time.monotonic() + ready_timeout * SLOW
        while self.port is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise TimeoutError(f"{name} did not print its address: {self.log_text()}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.proc.wait(5)
                raise RuntimeError(
                    f"{name} exited with {self.proc.returncode}: {self.log_text()}")
            self.stdout += chunk
            for line in self.stdout.decode().splitlines():
                m = re.match(r"listening on (https?)://.*:(\d+)$", line)
                if m:
                    self.scheme, self.port = m.group(1), int(m.group(2))
        self.host = "127.0.0.1"
        self.url = f"{self.scheme}://{self.host}:{self.port}"

    def log_text(self):
        return pathlib.Path(self.logfile.name).read_text(errors="replace")

    def logs(self):
        """The JSON log lines written so far (the workers flush once per
        loop turn, so wait a moment after the request before reading)."""
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_log(self, pred, timeout=5):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            for entry in self.logs():
                if pred(entry):
                    return entry
            time.sleep(0.02)
        raise AssertionError(f"no log line matched; log:\n{self.log_text()[-3000:]}")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the process and waits; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} did not exit after {sig!r}")
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def check_clean_exit(self):
        code = self.stop()
        log = self.log_text()
        assert "AddressSanitizer" not in log, log[-5000:]
        assert "runtime error:" not in log, log[-5000:]  # UBSan
        assert "LeakSanitizer" not in log, log[-5000:]
        assert code == 0, f"{self.name} exited with {code}: {log[-3000:]}"


@pytest.fixture
def service():
    """Starts services on demand; each is checked for a clean exit."""
    started = []

    def start(name, *args, **kw):
        s = Service(name, *args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.alive():
            s.check_clean_exit()


@pytest.fixture(scope="module")
def hello():
    s = Service("hello", "--workers", "2")
    yield s
    s.check_clean_exit()


@pytest.fixture(scope="module")
def kitchen():
    s = Service("kitchen", "--workers", "2")
    yield s
    s.check_clean_exit()


@pytest.fixture(scope="module", params=["kitchen", "gateway"])
def kitchen_or_gateway(request, tmp_path_factory):
    """kitchen itself, or microc-gateway in front of it (a registry, one
    kitchen, a route / to it): for tests of what any microc server must
    stand, run against both."""
    if request.param == "kitchen":
        s = Service("kitchen", "--workers", "2")
        yield s
        s.check_clean_exit()
        return
    tmp = tmp_path_factory.mktemp("kgw")
    reg = Service("microc-registry", "--data-dir", str(tmp / "reg"))
    kit = Service("kitchen", "--workers", "1", "--registry", reg.url, "--check-interval", "1s")
    routes = tmp / "routes.yaml"
    routes.write_text("routes:\n  - {prefix: /, service: kitchen, auth: public, timeout: 2s}\n")
    gw = Service("microc-gateway", "--routes", str(routes), "--registry", reg.url,
                 "--workers", "1")
    wait_for(lambda: requests.get(f"{gw.url}/items/7", timeout=5).status_code == 200,
             what="the gateway reaching kitchen")
    yield gw
    gw.check_clean_exit()
    kit.check_clean_exit()
    reg.check_clean_exit()


# ---- raw HTTP ---------------------------------------------------------------


def connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(sock, timeout=5):
    sock.settimeout(timeout * SLOW)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def read_until_quiet(sock, idle=0.05, total=3):
    """What the peer sends until it closes, says nothing for idle seconds,
    or total seconds have passed (both scaled by SLOW)."""
    sock.settimeout(idle * SLOW)
    got = bytearray()
    deadline = time.monotonic() + total * SLOW
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except OSError:  # the timeout, or a reset
            break
        if not data:
            break
        got += data
    return got


def exchange(port, data, timeout=5):
    """Sends raw bytes, reads until the server closes (or timeout)."""
    with connect(port) as s:
        s.sendall(data)
        return read_until_closed(s, timeout)


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lowercase name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


def parse_responses(data, head_requests=()):
    """Splits a byte stream into HTTP/1.1 responses (Content-Length
    framing, as microc answers). head_requests: indexes answered to HEAD."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError(f"incomplete response head: {data[:200]!r}")
        head = data[:end].decode("latin-1").split("\r\n")
        data = data[end + 4:]
        _, status, reason = (head[0].split(" ", 2) + [""])[:3]
        headers = []
        for line in head[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        status = int(status)
        n = 0
        if status >= 200 and status not in (204, 304) and len(out) not in head_requests:
            n = int(dict(headers).get("content-length", "0"))
        out.append(Response(status, reason, headers, data[:n]))
        data = data[n:]
    return out


def one_response(data):
    rs = parse_responses(data)
    assert len(rs) == 1, rs
    return rs[0]


# ---- a misbehaving upstream -------------------------------------------------------


# The body PATTERN_BLOCK repeats: byte i is "a" + i % 26, what kitchen's
# uploads send too. 65520 bytes, a multiple of 26, so blocks line up.
PATTERN_BLOCK = bytes(ord("a") + i % 26 for i in range(26 * 2520))


def pattern(n):
    """The first n bytes of the pattern."""
    reps, rest = divmod(n, len(PATTERN_BLOCK))
    return PATTERN_BLOCK * reps + PATTERN_BLOCK[:rest]


class LoopbackServer:
    """A listener on a free loopback port whose connections are each
    handed to self.serve(conn) on a thread of their own; self.accepted
    counts them. Subclasses write serve and may set fields before
    calling LoopbackServer.__init__."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, conn):
        raise NotImplementedError

    def close(self):
        self.sock.close()


class Upstream:
    """A raw-socket HTTP server that misbehaves on request, by path:

      /ok              200 with a JSON body, keep-alive
      /headers         200, the request head echoed as JSON
      /slow?ms=N       answers after N ms
      /close           closes without answering
      /half            sends half an answer, then closes
      /breakoff        1 MiB of a chunked answer, then closes without its end
      /reset           resets the connection (RST)
      /garbage         answers with bytes that are not HTTP
      /status?code=N   answers with status N
      /oneshot         answers with keep-alive, then closes the connection
                       a moment later (a stale pooled connection)
      /chunked         a chunked answer
      /big?kb=N        N KiB of body
      /sink            reads the body (Content-Length or chunked) and
                       answers {"bytes", "crc", "chunked"}
      /continue        /sink, after an interim 100 Continue
      /early           answers 200 at once, never reads the body, and
                       closes the connection a few seconds later
      /stream?kb=N     N KiB of PATTERN, written in 64 KiB pieces
                       (&chunked=1: chunked; &delay_ms=M between pieces)
      /cut_chunked     a chunked answer that stops mid-chunk (closes)
      /reset_mid       announces 1 MiB, sends 128 KiB, resets (RST)
      /stall           announces 1000 bytes, sends 10, waits 5 s

    It counts connections and requests so tests can see pooling; delay_ms
    holds every answer back that long (a slow instance)."""

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = False
        self.delay_ms = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        import threading
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _read_request(self, c, buf):
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if target.startswith("/early"):
            return (method, target, headers, b""), b""
        if target.startswith("/continue"):  # unasked for, as some servers do
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, rest = self._read_chunked(c, rest)
            if body is None:
                return None, b""
            return (method, target, headers, body), rest
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            chunk = c.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        body, rest = rest[:n], rest[n:]
        return (method, target, headers, body), rest

    def _read_chunked(self, c, buf):
        body = bytearray()
        while True:
            while b"\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return None, b""
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            n = int(line.split(b";")[0], 16)
            while len(buf) < n + 2:
                chunk = c.recv(1 << 20)
                if not chunk:
                    return None, b""
                buf += chunk
            if buf[n:n + 2] != b"\r\n":
                raise OSError("bad chunk framing")
            body += buf[:n]
            buf = buf[n + 2:]
            if n == 0:
                return bytes(body), buf

    def _serve(self, c):
        import urllib.parse
        buf = b""
        try:
            while True:
                req, buf = self._read_request(c, buf)
                if req is None:
                    return
                method, target, headers, body = req
                with self.lock:
                    self.requests.append(req)
                if self.delay_ms:
                    time.sleep(self.delay_ms / 1000)
                u = urllib.parse.urlsplit(target)
                q = dict(urllib.parse.parse_qsl(u.query))
                path = u.path

                def answer(status, body=b"", extra=b""):
                    c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" %
                              (status, len(body), extra) + body)

                if path == "/ok":
                    answer(200, b'{"ok":true}', b"Content-Type: application/json\r\n")
                elif path == "/headers":
                    answer(200, json.dumps({"method": method, "target": target,
                                            "headers": headers,
                                            "body": body.decode("latin-1")}).encode())
                elif path == "/slow":
                    time.sleep(int(q.get("ms", "1000")) / 1000)
                    answer(200, b"slow")
                elif path == "/close":
                    c.close()
                    return
                elif path == "/half":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
                    c.close()
                    return
                elif path == "/breakoff":  # a long answer that stops midway
                    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    for _ in range(16):
                        c.sendall(b"10000\r\n" + b"b" * 0x10000 + b"\r\n")
                    c.close()
                    return
                elif path == "/reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    c.close()
                    return
                elif path == "/garbage":
                    c.sendall(b"SSH-2.0-nope\r\n\r\n")
                    c.close()
                    return
                elif path == "/status":
                    answer(int(q.get("code", "500")), b"status")
                elif path == "/oneshot":
                    answer(200, b"once")
                    time.sleep(0.1)
                    c.close()
                    return
                elif path == "/chunked":
                    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                elif path == "/big":
                    answer(200, b"x" * (int(q.get("kb", "1")) * 1024))
                elif path in ("/sink", "/continue"):
                    import zlib
                    answer(200, json.dumps({
                        "bytes": len(body), "crc": zlib.crc32(body),
                        "chunked": "transfer-encoding" in headers}).encode())
                elif path == "/early":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
                    time.sleep(3)
                    return
                elif path == "/stream":
                    n = int(q.get("kb", "1")) * 1024
                    chunked = q.get("chunked") == "1"
                    delay = int(q.get("delay_ms", "0")) / 1000
                    c.sendall(b"HTTP/1.1 200 OK\r\n" +
                              (b"Transfer-Encoding: chunked\r\n\r\n" if chunked
                               else b"Content-Length: %d\r\n\r\n" % n))
                    sent = 0
                    while sent < n:
                        k = min(len(PATTERN_BLOCK), n - sent)
                        piece = PATTERN_BLOCK[:k]
                        c.sendall(b"%x\r\n%s\r\n" % (k, piece) if chunked else piece)
                        sent += k
                        if delay:
                            time.sleep(delay)
                    if chunked:
                        c.sendall(b"0\r\n\r\n")
                elif path == "/cut_chunked":
                    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"5\r\nhello\r\n100\r\nonly a part")
                    c.close()
                    return
                elif path == "/reset_mid":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" +
                              b"r" * (128 * 1024))
                    time.sleep(0.2)
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    c.close()
                    return
                elif path == "/stall":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                    time.sleep(5)
                    return
                else:
                    answer(404, b"no")
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()
