"""A local push service for `bench/push.py`: answers every push with 201 at once and records
it. Run in a process of its own (asyncio, aiohttp) so it takes no GIL from the code measured.

    .venv/bin/python bench/push_service.py [--port 8072]

    POST /p/<n>     a push to subscription n: 201; recorded as (n, wall-clock time on arrival,
                    Topic header, body length, whether it carried a VAPID Authorization and the
                    aes128gcm Content-Encoding); the body is kept for `GET /_bodies`
    GET  /_count    {"posts": how many so far}
    GET  /_posts    {"posts": [[n, time, topic, length, well_formed], ...]}
    GET  /_bodies   {"bodies": [[n, base64url body], ...]} (?limit=N: the first N)
    GET  /_headers  the headers of the first push recorded (TTL, Urgency, Topic: the floor
                    sends the same)
    POST /_reset    forget everything recorded

Times are `time.time()` (CLOCK_REALTIME), comparable with the bench process's.
"""

import argparse
import base64
import time

from aiohttp import web

RECORDS = web.AppKey("records", list)
BODIES = web.AppKey("bodies", list)
HEADERS = web.AppKey("headers", dict)


async def push(request):
    body = await request.read()
    arrived = time.time()
    headers = request.headers
    well_formed = (
        headers.get("Authorization", "").startswith("vapid t=")
        and headers.get("Content-Encoding") == "aes128gcm"
        and "TTL" in headers
    )
    number = int(request.match_info["number"])
    request.app[RECORDS].append((number, arrived, headers.get("Topic", ""), len(body), well_formed))
    request.app[BODIES].append((number, body))
    if not request.app[HEADERS]:
        request.app[HEADERS].update(headers)
    return web.Response(
        status=201, headers={"Location": f"/m/{number}-{len(request.app[RECORDS])}"}
    )


async def count(request):
    return web.json_response({"posts": len(request.app[RECORDS])})


async def posts(request):
    return web.json_response({"posts": request.app[RECORDS]})


async def bodies(request):
    limit = int(request.query.get("limit", len(request.app[BODIES])))
    encoded = [
        (number, base64.urlsafe_b64encode(body).decode())
        for number, body in request.app[BODIES][:limit]
    ]
    return web.json_response({"bodies": encoded})


async def first_headers(request):
    return web.json_response(dict(request.app[HEADERS]))


async def reset(request):
    request.app[RECORDS].clear()
    request.app[BODIES].clear()
    request.app[HEADERS].clear()
    return web.json_response({"posts": 0})


def application():
    app = web.Application(client_max_size=8192)
    app[RECORDS], app[BODIES], app[HEADERS] = [], [], {}
    app.router.add_post(r"/p/{number:\d+}", push)
    app.router.add_get("/_count", count)
    app.router.add_get("/_posts", posts)
    app.router.add_get("/_bodies", bodies)
    app.router.add_get("/_headers", first_headers)
    app.router.add_post("/_reset", reset)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8072)
    args = parser.parse_args()
    web.run_app(application(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
