"""A real headless browser (Debian's Chromium, driven by Playwright) and pages on other origins.

Playwright never downloads a browser here: `deploy/local/test.sh` installs the `chromium`
package, and the tests launch that binary. With HELPDESK_REQUIRE_BROWSER set (test.sh sets
it), a missing Chromium fails the tests instead of skipping them.
"""

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright
from starlette.types import Receive, Scope, Send

REQUIRE_BROWSER_ENV = "HELPDESK_REQUIRE_BROWSER"
CHROMIUM_ENV = "HELPDESK_CHROMIUM"  # another Chromium binary, if not the one on PATH


def chromium_executable() -> str:
    """The Chromium binary; skips the test when there is none, unless one is required."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"{CHROMIUM_ENV}={configured} is not an executable")
        return configured
    found = shutil.which("chromium")
    if found:
        return found
    reason = (
        "no Chromium found (install the Debian package `chromium`, as deploy/local/test.sh"
        f" does, or set {CHROMIUM_ENV})"
    )
    if os.environ.get(REQUIRE_BROWSER_ENV):
        pytest.fail(f"{reason}, and {REQUIRE_BROWSER_ENV} is set")
    pytest.skip(reason)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = chromium_executable()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def static_origins(html: str, count: int) -> AsyncIterator[list[str]]:
    """Serve `html` at `/` on `count` free ports: `count` distinct origins of one page."""
    body = html.encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        found = scope["path"] == "/"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if found else 404,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body if found else b"not found"})

    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    origins = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve(sockets=sockets))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises the start-up error
                await asyncio.sleep(0.02)
        yield origins
    finally:
        server.should_exit = True
        await task
        for s in sockets:
            s.close()
