"""The FastAPI + httpx peer of microc-gateway, for bench/gateway/run (for comparison only).

A gateway as the source documents write one: GET /api/hello/{name} is forwarded to hello's
GET /hello/{name} with httpx, and the upstream's status, body and Content-Type are returned.
This is the fair variant: ONE httpx.AsyncClient per worker process, created at start-up and
closed at shutdown, so upstream connections are kept alive and reused (a client per request
would open a connection per request). Its pool keeps up to 64 idle connections, as nginx's
`keepalive 64` does.

The upstream's port comes from the environment variable HELLO_PORT (HELLO_HOST, default
127.0.0.1). Run it with uvicorn, from bench/peers:

    HELLO_PORT=8001 /usr/bin/python3 -m uvicorn fastapi_gateway:app --workers 1 \
        --no-access-log --log-level warning --host 127.0.0.1 --port 8002

It needs Debian's python3-httpx (scripts/bootstrap installs it).
"""

import os

import httpx
from fastapi import FastAPI, Response

UPSTREAM = f"http://{os.environ.get('HELLO_HOST', '127.0.0.1')}:{os.environ['HELLO_PORT']}"

app = FastAPI(title="gateway (FastAPI + httpx peer)")
client = None  # the worker's one shared httpx.AsyncClient


@app.on_event("startup")
async def open_client() -> None:
    global client
    client = httpx.AsyncClient(
        base_url=UPSTREAM,
        timeout=httpx.Timeout(10.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=64),
    )


@app.on_event("shutdown")
async def close_client() -> None:
    if client is not None:
        await client.aclose()


@app.get("/api/hello/{name}")
async def hello(name: str) -> Response:
    r = await client.get(f"/hello/{name}")
    return Response(content=r.content, status_code=r.status_code,
                    media_type=r.headers.get("content-type"))
