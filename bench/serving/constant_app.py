"""The HTTP floor: a bare ASGI app on uvicorn that reads the body and returns a constant."""

BODY = (
    b'{"model_name":"digits","model_version":"1","outputs":[{"name":"predict",'
    b'"datatype":"INT64","shape":[1],"data":[0]}]}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
