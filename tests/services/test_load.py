"""Concurrency, overload, disconnects and authentication on the real Serve instance.

The ``/tight`` application (see conftest) lets its model take one request at a time, queues one more and
holds each batch open for ``batch_wait_timeout_s`` = 1.5 s: a deterministic "slow model" without compute.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests import imagegen
from tests.services.conftest import ServeEndpoints
from tests.services.util import assert_colorized

pytestmark = pytest.mark.slow


def test_32_parallel_requests_all_correct(serve_app: ServeEndpoints) -> None:
    sizes = [(48 + 7 * i, 40 + 5 * (i % 9)) for i in range(32)]
    images = [imagegen.grey_jpeg(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    limit = asyncio.Semaphore(32)

    async def one(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
        async with limit:
            return await client.post("/v1/colorize?format=png", content=data)

    async def all_of_them() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=serve_app.base, timeout=120.0) as client:
            return await asyncio.gather(*(one(client, d) for d in images))

    answers = asyncio.run(all_of_them())
    assert [r.status_code for r in answers] == [200] * 32
    for data, r in zip(images, answers, strict=True):
        assert_colorized(data, r.content, "png")  # right size, the input's own L*: no mix-ups within a batch
    assert max(int(r.headers["x-batch-size"]) for r in answers) > 1  # requests really were batched


def _tight_post(serve_app: ServeEndpoints, data: bytes, timeout: float = 30.0) -> httpx.Response:
    return httpx.post(
        f"{serve_app.tight}/v1/colorize",
        content=data,
        headers={"Authorization": f"Bearer {serve_app.api_key}"},
        timeout=timeout,
    )


def test_full_queue_is_503_and_a_disconnect_frees_its_slot(serve_app: ServeEndpoints) -> None:
    small = imagegen.grey_jpeg(32, 32)
    headers = {"Authorization": f"Bearer {serve_app.api_key}"}
    url = f"{serve_app.tight}/v1/colorize"

    async def scenario() -> tuple[httpx.Response, httpx.Response, int]:
        async with (
            httpx.AsyncClient(timeout=30.0, headers=headers) as abandoned,
            httpx.AsyncClient(timeout=30.0, headers=headers) as client,
        ):
            assert (await client.get(f"{serve_app.tight}/readyz")).status_code == 200
            # A takes the model's only slot (its batch stays open 1.5 s), B waits in the one queue place.
            a = asyncio.create_task(abandoned.post(url, content=small))
            await asyncio.sleep(0.2)
            b = asyncio.create_task(abandoned.post(url, content=small))
            await asyncio.sleep(0.3)
            overloaded = await client.post(url, content=small)
            ready_while_busy = (await client.get(f"{serve_app.tight}/readyz")).status_code
            # A and B hang up. Their slots must come back at once, not when A's batch would have finished.
            a.cancel()
            b.cancel()
            await asyncio.gather(a, b, return_exceptions=True)
            await abandoned.aclose()
            await asyncio.sleep(0.2)
            after = await client.post(url, content=small)
            return overloaded, after, ready_while_busy

    overloaded, after, ready_while_busy = asyncio.run(scenario())
    assert overloaded.status_code == 503, overloaded.text
    assert int(overloaded.headers["retry-after"]) >= 1
    assert overloaded.json()["error"] == "OverloadedError"  # admission's refusal: depth 2 of 2
    assert overloaded.json()["detail"].startswith("the colorizer is busy: 2 requests ahead")
    assert after.status_code == 200, after.text  # had A and B kept their slots, this would be another 503
    assert ready_while_busy == 200  # loaded but busy is still ready


def test_overload_never_answers_anything_but_200_or_503(serve_app: ServeEndpoints) -> None:
    small = imagegen.grey_jpeg(40, 30)

    async def burst() -> list[int]:
        headers = {"Authorization": f"Bearer {serve_app.api_key}"}
        async with httpx.AsyncClient(base_url=serve_app.tight, timeout=60.0, headers=headers) as client:
            answers = await asyncio.gather(*(client.post("/v1/colorize", content=small) for _ in range(8)))
        for r in answers:
            assert r.json()["detail"] if r.status_code == 503 else r.content
        return [r.status_code for r in answers]

    codes = asyncio.run(burst())
    assert set(codes) == {200, 503} and 1 <= codes.count(200) <= 3, codes


def test_api_key_required_where_configured(serve_app: ServeEndpoints) -> None:
    data = imagegen.grey_jpeg(32, 32)
    missing = httpx.post(f"{serve_app.tight}/v1/colorize", content=data)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {
        "detail": "this server needs an API key: send 'Authorization: Bearer <key>'",
        "error": "UnauthorizedError",
    }
    wrong = httpx.post(f"{serve_app.tight}/v1/colorize", content=data, headers={"Authorization": "Bearer not-the-key"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "the API key is not valid"
    basic = httpx.post(f"{serve_app.tight}/v1/colorize", content=data, headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401
    assert httpx.get(f"{serve_app.tight}/v1/model").status_code == 401
    card = httpx.get(f"{serve_app.tight}/v1/model", headers={"Authorization": f"Bearer {serve_app.api_key}"})
    assert card.status_code == 200 and card.json()["auth"] is True

    ok = _tight_post(serve_app, data)
    assert ok.status_code == 200, ok.text
    assert_colorized(data, ok.content, "jpeg")
    # The page, health and metrics stay open: the page has a key field of its own.
    assert httpx.get(f"{serve_app.tight}/").status_code == 200
    assert httpx.get(f"{serve_app.tight}/healthz").status_code == 200
    assert httpx.get(f"{serve_app.tight}/readyz").status_code == 200


def test_no_api_key_needed_when_none_is_configured(serve_app: ServeEndpoints) -> None:
    r = httpx.post(f"{serve_app.base}/v1/colorize", content=imagegen.grey_jpeg(32, 32), timeout=30.0)
    assert r.status_code == 200
