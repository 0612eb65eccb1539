"""What the officer's phone downloads for the feed, measured in Chromium."""

import pytest

from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUDGET_BYTES = 100 * 1024
PAGE_TYPES = {"document", "stylesheet", "script"}
# Resource Timing: bytes over the wire (headers + encoded body); 0 when served from the cache.
CACHED_TRANSFER = """() => performance.getEntriesByType('resource')
  .filter(entry => ['link', 'script'].includes(entry.initiatorType))
  .map(entry => ({name: entry.name, transferSize: entry.transferSize}))"""


def test_the_feed_page_is_under_100_kb_compressed_and_its_static_files_are_cached(
    story, officer, as_person, open_session
):
    signed_in = as_person(officer, PHONE).context.storage_state()
    page = open_session(PHONE, storage_state=signed_in).page  # signed in, empty HTTP cache
    responses = []

    def record(response):
        responses.append(response)

    page.on("response", record)
    page.goto("/", wait_until="load")
    page.remove_listener("response", record)
    loaded = [r for r in responses if r.request.resource_type in PAGE_TYPES]
    sizes = {r.url: r.request.sizes() for r in loaded}
    encodings = {r.url: r.all_headers().get("content-encoding", "identity") for r in loaded}
    total = sum(s["responseHeadersSize"] + s["responseBodySize"] for s in sizes.values())
    static = [r for r in loaded if "/static/" in r.url]
    page.goto("/history/")
    page.goto("/", wait_until="load")
    again = page.evaluate(CACHED_TRANSFER)

    print(f"\nfeed page, first visit: {total} bytes ({total / 1024:.1f} KB) transferred")
    for url, size in sizes.items():
        body, headers = size["responseBodySize"], size["responseHeadersSize"]
        print(f"  {body:>7} bytes body ({encodings[url]}) + {headers} headers  {url}")
    print(f"feed page, next visit: static files {sum(e['transferSize'] for e in again)} bytes")
    assert total < BUDGET_BYTES
    assert {r.request.resource_type for r in loaded} == PAGE_TYPES
    for response in static:
        headers = response.all_headers()
        assert headers.get("content-encoding") in {"br", "gzip"}, response.url
        assert "immutable" in headers.get("cache-control", ""), response.url
    assert again and all(entry["transferSize"] == 0 for entry in again), again
