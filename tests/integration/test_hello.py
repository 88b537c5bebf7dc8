"""hello, the README's example: what it promises, and the built-in routes
every microc service answers."""

import json
import os
import subprocess

import requests

from conftest import binary


def test_hello_greets_by_name(hello):
    r = requests.get(f"{hello.url}/hello/world")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"message": "Hello, world!"}


def test_hello_decodes_percent_encoded_names(hello):
    r = requests.get(f"{hello.url}/hello/J%C3%BCrgen%20M")
    assert r.json() == {"message": "Hello, Jürgen M!"}


def test_hello_name_too_long_is_422_in_path(hello):
    r = requests.get(f"{hello.url}/hello/" + "x" * 101)
    assert r.status_code == 422
    body = r.json()
    assert [e["loc"] for e in body["errors"]] == [["path", "name"]]
    assert body["errors"][0]["type"] == "string_too_long"


def test_echo_returns_the_validated_body(hello):
    msg = {"message": "hi there", "count": 3, "tags": ["a", "b"]}
    r = requests.post(f"{hello.url}/echo", json=msg)
    assert r.status_code == 200
    assert r.json() == msg


def test_echo_without_tags_answers_null_tags(hello):
    r = requests.post(f"{hello.url}/echo", json={"message": "m", "count": 100})
    assert r.status_code == 200
    assert r.json() == {"message": "m", "count": 100, "tags": None}


def test_echo_two_violations_give_exactly_two_errors(hello):
    r = requests.post(f"{hello.url}/echo", json={"message": "", "count": 0})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422
    assert body["title"] == "Unprocessable Content"
    assert body["type"] == "about:blank"
    assert body["instance"] == "/echo"
    assert body["request_id"] == r.headers["x-request-id"]
    assert [e["loc"] for e in body["errors"]] == [["body", "message"], ["body", "count"]]
    for e in body["errors"]:
        assert e["msg"] and e["type"]


def test_echo_reports_every_violation_with_its_loc(hello):
    r = requests.post(f"{hello.url}/echo", json={
        "message": "x" * 257, "count": "three", "tags": ["ok", 7] + ["t"] * 0})
    assert r.status_code == 422
    errs = {tuple(e["loc"]): e["type"] for e in r.json()["errors"]}
    assert errs == {
        ("body", "message"): "string_too_long",
        ("body", "count"): "int_type",
        ("body", "tags", 1): "string_type",
    }


def test_echo_missing_fields(hello):
    r = requests.post(f"{hello.url}/echo", json={})
    assert r.status_code == 422
    errs = r.json()["errors"]
    assert [(e["loc"], e["type"]) for e in errs] == [
        (["body", "message"], "missing"), (["body", "count"], "missing")]


def test_echo_too_many_tags(hello):
    r = requests.post(f"{hello.url}/echo",
                      json={"message": "m", "count": 1, "tags": ["t"] * 11})
    assert r.status_code == 422
    assert [e["type"] for e in r.json()["errors"]] == ["too_long"]


def test_echo_malformed_json_is_400_problem(hello):
    r = requests.post(f"{hello.url}/echo", data=b'{"message": "hi", "count": 3',
                      headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 400
    assert body["errors"][0]["type"] == "json_invalid"
    assert body["errors"][0]["loc"] == ["body"]


def test_echo_body_that_is_not_an_object(hello):
    r = requests.post(f"{hello.url}/echo", json=[1, 2])
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body"]


def test_echo_empty_body_is_missing(hello):
    r = requests.post(f"{hello.url}/echo", data=b"",
                      headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"loc": ["body"], "msg": "Field required", "type": "missing"}]


def test_echo_wrong_media_type_is_415(hello):
    r = requests.post(f"{hello.url}/echo", data=b"message=hi",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert r.headers["content-type"] == "application/problem+json"


def test_echo_accepts_json_with_charset_and_suffix_types(hello):
    body = json.dumps({"message": "m", "count": 1})
    for ct in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = requests.post(f"{hello.url}/echo", data=body, headers={"content-type": ct})
        assert r.status_code == 200, ct


def test_unknown_path_is_404_problem(hello):
    r = requests.get(f"{hello.url}/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404


def test_wrong_method_is_405_with_allow(hello):
    r = requests.delete(f"{hello.url}/echo")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST, OPTIONS"
    r = requests.post(f"{hello.url}/hello/x")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_options_answers_allow(hello):
    r = requests.options(f"{hello.url}/hello/x")
    assert r.status_code == 204
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_head_has_headers_and_no_body(hello):
    g = requests.get(f"{hello.url}/hello/x")
    h = requests.head(f"{hello.url}/hello/x")
    assert h.status_code == 200
    assert h.content == b""
    assert h.headers["content-length"] == g.headers["content-length"]


def test_health(hello):
    assert requests.get(f"{hello.url}/health/live").json() == {"status": "ok"}
    assert requests.get(f"{hello.url}/health/ready").json() == {"status": "ready"}


def test_openapi_is_valid_openapi_31(hello, tmp_path):
    r = requests.get(f"{hello.url}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "hello"
    assert set(doc["paths"]) == {"/hello/{name}", "/echo"}
    echo = doc["components"]["schemas"]["echo_msg"]
    assert echo["required"] == ["message", "count"]
    assert echo["properties"]["message"]["minLength"] == 1
    assert echo["properties"]["message"]["maxLength"] == 256
    assert echo["properties"]["count"]["minimum"] == 1
    assert echo["properties"]["count"]["maximum"] == 100
    assert echo["properties"]["tags"]["maxItems"] == 10
    post = doc["paths"]["/echo"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/echo_msg"}
    assert "422" in post["responses"]
    # A validator nobody here wrote: swagger-parser, from npm.
    path = tmp_path / "openapi.json"
    path.write_bytes(r.content)
    npm_root = subprocess.run(["npm", "root", "-g"], capture_output=True,
                              text=True).stdout.strip()
    check = subprocess.run(
        ["node", "-e",
         "require('@apidevtools/swagger-parser').validate(process.argv[1])"
         ".then(a => console.log('valid', a.openapi))"
         ".catch(e => { console.error(e.message); process.exit(1); })",
         str(path)],
        capture_output=True, text=True, env={**os.environ, "NODE_PATH": npm_root},
        timeout=60)
    assert check.returncode == 0, check.stderr
    assert "valid 3.1.0" in check.stdout


def test_docs_serves_swagger_ui(hello):
    r = requests.get(f"{hello.url}/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "swagger-ui-bundle.js" in r.text
    js = requests.get(f"{hello.url}/docs/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert len(js.content) > 100000
    css = requests.get(f"{hello.url}/docs/swagger-ui.css")
    assert css.status_code == 200
    init = requests.get(f"{hello.url}/docs/docs-init.js")
    assert "/openapi.json" in init.text
    assert requests.get(f"{hello.url}/docs/../../etc/passwd").status_code == 404
    assert requests.get(f"{hello.url}/docs/package.json").status_code == 404


def test_help_and_version():
    out = subprocess.run([binary("hello"), "--help"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0
    for flag in ("--listen", "--workers", "--help", "--version", "MICROC_LISTEN"):
        assert flag in out.stdout
    out = subprocess.run([binary("hello"), "--version"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout.startswith("hello ")


def test_bad_flags_exit_2():
    for args in (["--nope"], ["--workers", "x"], ["--listen"], ["stray"],
                 ["--listen", "nohost"], ["--log-level", "loud"]):
        out = subprocess.run([binary("hello"), *args], capture_output=True,
                             text=True, timeout=10)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr


def test_port_in_use_fails_clearly(hello):
    out = subprocess.run([binary("hello"), "--listen", f"127.0.0.1:{hello.port}",
                          "--workers", "1"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode != 0
    assert "cannot listen" in out.stderr
