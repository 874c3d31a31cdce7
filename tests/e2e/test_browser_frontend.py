"""The agents' frontend, a browser app on another origin, uses the API in a real Chromium.

The page below stands in for that app: served from an origin of its own, it lists tickets
with `fetch` and a bearer token (CORS), trades the token for a stream token and follows the
live stream with `EventSource`. The browser, not the test, enforces CORS: a page from an
origin the service does not allow is refused.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page

from support.browser import chromium, static_origins
from support.service import TicketingService, ticketing_service

FRONTEND = """<!doctype html>
<html>
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Agents' frontend</title></head>
<body>
<ul id="tickets" data-state="pending"></ul>
<div id="stream" data-state="pending"></div>
<ol id="events"></ol>
<script>
const config = new URLSearchParams(location.hash.slice(1));
const api = config.get("api");
const bearer = {Authorization: "Bearer " + config.get("token")};
const EVENT_TYPES = ["TicketOpened", "InternalNoteAdded", "ResponseSent", "TicketAssigned"];

function failed(element, error) {
  element.dataset.error = error.name + ": " + error.message;
  element.dataset.state = "error";
}

async function listTickets() {
  const list = document.getElementById("tickets");
  try {
    const response = await fetch(api + "/v1/tickets?limit=100", {headers: bearer});
    if (!response.ok) throw new Error("HTTP " + response.status);
    list.dataset.correlationId = response.headers.get("X-Correlation-Id") ?? "";
    for (const ticket of (await response.json()).items) {
      const item = document.createElement("li");
      item.dataset.id = ticket.id;
      item.textContent = ticket.subject;
      list.append(item);
    }
    list.dataset.state = "done";
  } catch (error) {
    failed(list, error);
  }
}

async function followStream() {
  const stream = document.getElementById("stream");
  try {
    const response = await fetch(api + "/v1/stream-tokens", {method: "POST", headers: bearer});
    if (response.status !== 201) throw new Error("HTTP " + response.status);
    const {token} = await response.json();
    const source = new EventSource(api + "/v1/stream?access_token=" + encodeURIComponent(token));
    source.onopen = () => { stream.dataset.state = "open"; };
    source.onerror = () => {
      stream.dataset.state = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => {
        const item = document.createElement("li");
        item.dataset.type = event.type;
        item.dataset.id = event.lastEventId;
        item.textContent = event.data;
        document.getElementById("events").append(item);
      });
    }
  } catch (error) {
    failed(stream, error);
  }
}

listTickets();
followStream();
</script>
</body>
</html>
"""

SETTLED = ":not([data-state=pending])"
TIMEOUT_MS = 10_000


def _ticket(subject: str) -> dict[str, Any]:
    return {"subject": subject, "description": "From the test", "requester": {"customer_id": "c-1"}}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
async def origins() -> AsyncIterator[tuple[str, str]]:
    """The frontend's origin (allowed by the service) and a foreign one (not allowed)."""
    async with static_origins(FRONTEND, count=2) as (frontend, foreign):
        yield frontend, foreign


@pytest.fixture
async def service(
    origins: tuple[str, str], database_url: str, kafka_bootstrap: str
) -> AsyncIterator[TicketingService]:
    frontend, _ = origins
    async with ticketing_service(database_url, kafka_bootstrap, cors_origins=[frontend]) as s:
        yield s


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def _open_frontend(page: Page, origin: str, service: TicketingService, token: str) -> None:
    await page.goto(f"{origin}/#api={service.base_url}&token={token}")


async def _state(page: Page, selector: str) -> tuple[str | None, str | None]:
    """Wait until the page settled `selector` (done, open or error); its state and error."""
    element = await page.wait_for_selector(selector + SETTLED, state="attached")
    assert element is not None
    return await element.get_attribute("data-state"), await element.get_attribute("data-error")


async def test_the_frontend_lists_tickets_and_follows_the_live_stream_across_origins(
    browser: Browser, origins: tuple[str, str], service: TicketingService, page: Page
) -> None:
    frontend, _ = origins
    acme = service.auth("acme")
    opened = {}
    for subject in ["Invoice shows the wrong amount", "Cannot log in"]:
        r = await service.client.post("/v1/tickets", json=_ticket(subject), headers=acme)
        assert r.status_code == 201, r.text
        opened[r.json()["id"]] = subject
    other_tenant = service.auth("globex", agent="agent-2")
    r = await service.client.post("/v1/tickets", json=_ticket("Not ours"), headers=other_tenant)
    assert r.status_code == 201, r.text

    await _open_frontend(page, frontend, service, acme["Authorization"].removeprefix("Bearer "))

    assert await _state(page, "#tickets") == ("done", None)
    listed = await page.eval_on_selector_all(
        "#tickets li", "items => items.map(i => [i.dataset.id, i.textContent])"
    )
    assert dict(listed) == opened  # the tenant's tickets, read across origins
    assert await page.get_attribute("#tickets", "data-correlation-id")  # an exposed header

    assert await _state(page, "#stream") == ("open", None)
    # Only now, with the stream open, does the ticket change.
    r = await service.client.post("/v1/tickets", json=_ticket("Printer on fire"), headers=acme)
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]

    await page.wait_for_selector("#events li[data-type=TicketOpened]", state="attached")
    received = await page.eval_on_selector_all(
        "#events li", "items => items.map(i => [i.dataset.type, i.dataset.id, i.textContent])"
    )
    assert [(kind, json.loads(data)["aggregate_id"]) for kind, _, data in received] == [
        ("TicketOpened", new_id)
    ]
    envelope = json.loads(received[0][2])
    assert envelope["tenant_id"] == "acme"
    assert envelope["payload"]["subject"] == "Printer on fire"
    assert int(received[0][1]) > 0  # the SSE id, a position to resume from


async def test_a_page_from_an_origin_not_allowed_is_refused_by_the_browser(
    browser: Browser, origins: tuple[str, str], service: TicketingService, page: Page
) -> None:
    _, foreign = origins
    console: list[str] = []

    def log(message: ConsoleMessage) -> None:
        console.append(message.text)

    page.on("console", log)
    acme = service.auth("acme")
    r = await service.client.post("/v1/tickets", json=_ticket("Cannot log in"), headers=acme)
    assert r.status_code == 201, r.text

    await _open_frontend(page, foreign, service, acme["Authorization"].removeprefix("Bearer "))

    # fetch rejects (a TypeError, as for a network failure): the page never sees the answer
    assert await _state(page, "#tickets") == ("error", "TypeError: Failed to fetch")
    assert await _state(page, "#stream") == ("error", "TypeError: Failed to fetch")
    assert await page.locator("#tickets li").count() == 0
    assert any("blocked by CORS policy" in text for text in console), console
