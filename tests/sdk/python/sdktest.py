"""Helpers shared by the centrifuge-python / cent test programs.

A program run by tests/sdk.rs gets, in its environment:
  ROOTCAST_WS_URL       ws://127.0.0.1:PORT/connection/websocket
  ROOTCAST_API_URL      http://127.0.0.1:PORT/api
  ROOTCAST_API_KEY      the server API key
  ROOTCAST_HMAC_SECRET  the HS256 secret for connection tokens (made here with PyJWT)
It prints what it does and exits 0 only when every check passed; on the first failed check
(or an overall timeout) it prints "FAIL: <why>" and exits 1.
"""

import asyncio
import logging
import os
import sys
import threading
import time
import warnings
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import cent
import jwt
from centrifuge import (
    Client,
    ClientEventHandler,
    Subscription,
    SubscriptionEventHandler,
)

_started = time.monotonic()


class TestFailure(Exception):
    pass


def log(*args: Any) -> None:
    print(f"[{time.monotonic() - _started:8.3f}s]", *args, flush=True)


# ROOTCAST_SDK_KEEP_GOING=1: a failed check is printed and the program goes on (and exits 1
# at the end), to see every difference in one run. Waits that time out still stop it.
KEEP_GOING = os.environ.get("ROOTCAST_SDK_KEEP_GOING") == "1"
_failures: List[str] = []


def fail(message: str) -> None:
    raise TestFailure(message)


def check(condition: bool, message: str) -> None:
    if not condition:
        if KEEP_GOING:
            print(f"FAIL (going on): {message}", flush=True)
            _failures.append(message)
            return
        fail(message)


def eq(actual: Any, expected: Any, what: str) -> None:
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        print(
            f"FAIL: environment variable {name} is not set (this program is run by tests/sdk.rs)",
            flush=True,
        )
        sys.exit(1)
    return value


WS_URL = env("ROOTCAST_WS_URL")
API_URL = env("ROOTCAST_API_URL")
API_KEY = env("ROOTCAST_API_KEY")
HMAC_SECRET = env("ROOTCAST_HMAC_SECRET")

WAIT = 10.0  # seconds, for any one event or call


def token(user: str, ttl: int = 600) -> str:
    """A connection token (HS256) for `user`, made with PyJWT."""
    # The test server's secret is short; PyJWT warns about that, and it doesn't matter here.
    warnings.filterwarnings("ignore", message=".*HMAC key.*")
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + ttl}, HMAC_SECRET, algorithm="HS256")


async def within(timeout: float, what: str, awaitable: Awaitable[Any]) -> Any:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        fail(f"{what}: timed out after {timeout}s")
    except TestFailure:
        raise
    except Exception as e:  # noqa: BLE001 - any error of the call fails the check
        fail(f"{what}: {type(e).__name__}: {e}")


async def raises(timeout: float, what: str, awaitable: Awaitable[Any]) -> BaseException:
    """Fails unless `awaitable` raises (within `timeout`); returns the exception."""
    try:
        value = await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        fail(f"{what}: timed out after {timeout}s")
    except Exception as e:  # noqa: BLE001
        return e
    fail(f"{what}: expected an error, got {value!r}")
    raise AssertionError("unreachable")


async def eventually(timeout: float, what: str, probe: Callable[[], Awaitable[Tuple[bool, Any]]]) -> Any:
    """Polls `probe` (returning (ok, seen)) until ok, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ok, seen = await probe()
        if ok:
            return seen
        if time.monotonic() > deadline:
            fail(f"{what}: still not true after {timeout}s; last seen {seen!r}")
        await asyncio.sleep(0.05)


class Api:
    """The cent (5.x) synchronous Client, run in a thread so the event loop goes on."""

    def __init__(self, api_key: str = "") -> None:
        self.client = cent.Client(API_URL, api_key or API_KEY, timeout=WAIT)

    async def __call__(self, request: Any) -> Any:
        method = getattr(self.client, request.api_method)
        what = f"cent {request.api_method} {request.api_payload}"
        result = await within(WAIT + 1, what, asyncio.to_thread(method, request))
        log(f"{what} -> {result!r}")
        return result

    async def error(self, request: Any) -> BaseException:
        method = getattr(self.client, request.api_method)
        what = f"cent {request.api_method} {request.api_payload}"
        e = await raises(WAIT + 1, what, asyncio.to_thread(method, request))
        log(f"{what} -> raised {e!r}")
        return e


class Recorder:
    """Records (kind, ctx) events in arrival order; next() waits for the next event of a
    kind, after the last one of that kind it returned."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: List[Tuple[str, Any]] = []
        self.taken: Dict[str, int] = {}
        self._changed = asyncio.Event()

    def push(self, kind: str, ctx: Any) -> None:
        log(f"{self.name}: {kind} {ctx!r}")
        self.events.append((kind, ctx))
        self._changed.set()

    def all(self, kind: str) -> List[Any]:
        return [ctx for k, ctx in self.events if k == kind]

    async def next(
        self,
        kind: str,
        what: str,
        pred: Callable[[Any], bool] = lambda _: True,
        timeout: float = WAIT,
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self.taken.get(kind, 0), len(self.events)):
                k, ctx = self.events[i]
                if k == kind and pred(ctx):
                    self.taken[kind] = i + 1
                    return ctx
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"{self.name}: waiting for {what}: timed out after {timeout}s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass


class ClientEvents(ClientEventHandler):
    """Records every client-level event; `on_connecting_hook` (async) is awaited inside
    on_connecting, i.e. after the connection is lost and before the reconnect is planned."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.on_connecting_hook: Optional[Callable[[], Awaitable[None]]] = None

    async def on_connecting(self, ctx):
        self.rec.push("connecting", ctx)
        hook, self.on_connecting_hook = self.on_connecting_hook, None
        if hook is not None:
            await hook()

    async def on_connected(self, ctx):
        self.rec.push("connected", ctx)

    async def on_disconnected(self, ctx):
        self.rec.push("disconnected", ctx)

    async def on_error(self, ctx):
        self.rec.push("error", ctx)

    async def on_subscribed(self, ctx):
        self.rec.push("server_subscribed", ctx)

    async def on_subscribing(self, ctx):
        self.rec.push("server_subscribing", ctx)

    async def on_unsubscribed(self, ctx):
        self.rec.push("server_unsubscribed", ctx)

    async def on_publication(self, ctx):
        self.rec.push("server_publication", ctx)

    async def on_join(self, ctx):
        self.rec.push("server_join", ctx)

    async def on_leave(self, ctx):
        self.rec.push("server_leave", ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    async def on_subscribing(self, ctx):
        self.rec.push("subscribing", ctx)

    async def on_subscribed(self, ctx):
        self.rec.push("subscribed", ctx)

    async def on_unsubscribed(self, ctx):
        self.rec.push("unsubscribed", ctx)

    async def on_publication(self, ctx):
        self.rec.push("publication", ctx)

    async def on_join(self, ctx):
        self.rec.push("join", ctx)

    async def on_leave(self, ctx):
        self.rec.push("leave", ctx)

    async def on_error(self, ctx):
        self.rec.push("error", ctx)


def new_client(user: str) -> Tuple[Client, ClientEvents, Recorder]:
    rec = Recorder(user)
    events = ClientEvents(rec)
    client = Client(
        WS_URL,
        events=events,
        token=token(user),
        name="rootcast-sdk-test",
        timeout=5.0,
        min_reconnect_delay=0.1,
        max_reconnect_delay=1.0,
        proxy=None,
    )
    return client, events, rec


def new_subscription(client: Client, owner: str, channel: str, **options: Any) -> Tuple[Subscription, Recorder]:
    rec = Recorder(f"{owner} {channel}")
    sub = client.new_subscription(channel, events=SubEvents(rec), **options)
    return sub, rec


async def connect(client: Client, rec: Recorder) -> Any:
    await within(WAIT, f"{rec.name}: connect()", client.connect())
    first = await rec.next("connecting", "connecting (connect() called)")
    eq(first.code, 0, "code of the first connecting event (connect called)")
    ctx = await rec.next("connected", "connected")
    check(isinstance(ctx.client, str) and ctx.client != "", f"connected without a client ID: {ctx!r}")
    return ctx


def run(main: Callable[[], Awaitable[None]], name: str, timeout: float = 60.0) -> None:
    """Runs `main` with an overall timeout; exits 0 when it returns, 1 on any failure."""
    if os.environ.get("ROOTCAST_SDK_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)

    # A last resort should the event loop itself hang.
    def hard_stop() -> None:
        print(f"FAIL: {name}: still running {timeout + 15}s after the start", flush=True)
        os._exit(1)

    watchdog = threading.Timer(timeout + 15, hard_stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        asyncio.run(asyncio.wait_for(main(), timeout))
    except TestFailure as e:
        print(f"FAIL: {e}", flush=True)
        os._exit(1)
    except asyncio.TimeoutError:
        print(f"FAIL: {name}: did not finish within {timeout}s", flush=True)
        os._exit(1)
    except BaseException as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        print(f"FAIL: {name}: {type(e).__name__}: {e}", flush=True)
        os._exit(1)
    if _failures:
        print(f"FAIL: {name}: {len(_failures)} failed checks (see above)", flush=True)
        os._exit(1)
    print(f"PASS: {name}", flush=True)
    sys.stdout.flush()
    os._exit(0)
