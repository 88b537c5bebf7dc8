"""The FastAPI peer of the microc `hello` service, for bench/http/run.

The same endpoint as hello's: GET /hello/{name} -> {"message": "Hello, <name>!"}, with a
pydantic response model, as a FastAPI service is usually written. Run it with uvicorn:

    /usr/bin/python3 -m uvicorn fastapi_hello:app --app-dir bench/peers \
        --host 127.0.0.1 --port 8001 --workers 2 --no-access-log --log-level warning
"""

from fastapi import FastAPI
from pydantic import BaseModel


class Greeting(BaseModel):
    message: str


app = FastAPI(title="hello (FastAPI peer)")


@app.get("/hello/{name}", response_model=Greeting)
async def hello(name: str) -> Greeting:
    return Greeting(message=f"Hello, {name}!")
