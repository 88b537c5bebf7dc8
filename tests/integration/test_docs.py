"""The prose stays true: the README's example is the hello source, and every
flag the docs name is one the binary knows."""

import re
import subprocess

from conftest import ROOT, binary


def test_readme_example_is_the_hello_source():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```c\n(.*?)```", readme, re.S).group(1)
    src = (ROOT / "examples" / "hello" / "main.c").read_text()
    assert block == src[src.index("#include"):]


def test_flags_in_the_docs_exist():
    help_text = subprocess.run([binary("hello"), "--help"], capture_output=True,
                               text=True, timeout=10).stdout
    known = set(re.findall(r"--[a-z][a-z-]+", help_text))
    for doc in ("README.md", "docs/operating.md", "docs/getting-started.md",
                "docs/writing-a-service.md"):
        text = (ROOT / doc).read_text()
        for flag in set(re.findall(r"`[^`]*?(--[a-z][a-z-]+)", text)):
            if flag in ("--output-on-failure",):
                continue
            assert flag in known, f"{doc} names {flag}, which hello --help does not list"


def test_registry_flags_in_its_docs_exist():
    help_text = subprocess.run([binary("microc-registry"), "--help"],
                               capture_output=True, text=True, timeout=10).stdout
    known = set(re.findall(r"--[a-z][a-z-]+", help_text))
    text = (ROOT / "docs/registry.md").read_text()
    for flag in set(re.findall(r"`(--[a-z][a-z-]+)", text)):
        assert flag in known, f"docs/registry.md names {flag}"


def test_gateway_flags_in_its_docs_exist():
    help_text = subprocess.run([binary("microc-gateway"), "--help"],
                               capture_output=True, text=True, timeout=10).stdout
    known = set(re.findall(r"--[a-z][a-z-]+", help_text))
    text = (ROOT / "docs/gateway.md").read_text()
    for flag in set(re.findall(r"`(--[a-z][a-z-]+)", text)):
        assert flag in known, f"docs/gateway.md names {flag}"


def test_gateway_example_routes_load():
    """examples/gateway.yaml is the docs' example: it must stay valid."""
    import os
    env = dict(os.environ, MICROC_JWT_SECRET="x" * 32)
    p = subprocess.Popen([binary("microc-gateway"), "--routes",
                          str(ROOT / "examples/gateway.yaml"), "--listen", "127.0.0.1:0",
                          "--registry", "http://127.0.0.1:1", "--workers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = p.stdout.readline().decode()
        assert line.startswith("listening on http://"), p.stderr.read()[-2000:]
    finally:
        p.terminate()
        p.wait(20)
