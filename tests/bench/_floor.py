"""The paging floor, run as its own process: `python -m tests.bench._floor BASE_URL`.

Plain httpx paging of the full export (GET /api/v2/export/?includeDeleted=true following
nextPageCursor, json-decoding each page), nothing else. Prints one JSON object: seconds (the
paging loop only, not interpreter start-up), pages, bytes, books, highlights.
"""

from __future__ import annotations

import json
import os
import sys
import time

import httpx


def page_all(base_url: str, token: str) -> dict[str, float]:
    pages = size = books = highlights = 0
    started = time.perf_counter()
    with httpx.Client(timeout=60.0) as client:
        cursor: object = None
        while True:
            params = {"includeDeleted": "true"}
            if cursor is not None:
                params["pageCursor"] = str(cursor)
            response = client.get(
                f"{base_url}/api/v2/export/",
                params=params,
                headers={"Authorization": f"Token {token}"},
            )
            response.raise_for_status()
            body = json.loads(response.content)
            pages += 1
            size += len(response.content)
            books += len(body["results"])
            highlights += sum(len(book["highlights"]) for book in body["results"])
            cursor = body.get("nextPageCursor")
            if not cursor:
                break
    return {
        "seconds": time.perf_counter() - started,
        "pages": pages,
        "bytes": size,
        "books": books,
        "highlights": highlights,
    }


if __name__ == "__main__":
    print(json.dumps(page_all(sys.argv[1], os.environ["READWISE_TOKEN"])))
