"""The OpenAI fake's own controls: directive spellings shared with the other fakes, and the HTTP
control endpoints the devstack uses."""

from __future__ import annotations

import httpx

from tests.fakes.openai import FakeOpenAI
from tests.fakes.openai_faults import parse
from tests.support.openai_env import fake

__all__ = ["fake"]


def test_directives_accept_the_other_fakes_spellings() -> None:
    wanted = parse("x [status:429:2] [code:slow_down] [retry-after:3] [jobfail:1] [render:5000]")
    assert (wanted.fail, wanted.fail_times, wanted.code) == (429, 2, "slow_down")
    assert wanted.retry_after == "3"
    assert (wanted.video_fail, wanted.video_fail_times, wanted.render_ms) == (True, 1, 5000)
    assert parse("plain prompt") == type(wanted)()


async def test_faults_injected_over_http_answer_the_next_calls(fake: FakeOpenAI) -> None:
    origin = fake.base_url.removesuffix("/v1")
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi [code:ignored]"}]}
    headers = {"Authorization": f"Bearer {next(iter(fake.api_keys or ['any']))}"}
    async with httpx.AsyncClient(base_url=origin) as http:
        injected = await http.post(
            "/_fake/faults", json={"route": "chat", "status": 429, "retry_after": "2"}
        )
        assert injected.status_code == 200
        limited = await http.post("/v1/chat/completions", json=chat, headers=headers)
        fine = await http.post("/v1/chat/completions", json=chat, headers=headers)
        stats = (await http.get("/_fake/stats")).json()
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert fine.status_code == 200 and fine.headers["x-request-id"].startswith("req_")
    assert stats["counts"]["chat"] == 2
    assert fake.count("chat", contains="hi") == 2
