"""The local stand-in server refuses what the real API refuses, as the real client sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from local_embeddings_server import EmbeddingsServer, count_tokens, vector

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def client(server: EmbeddingsServer, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="key", max_retries=retries)


def statuses(server: EmbeddingsServer) -> list[int]:
    return [record["status"] for record in server.log]


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def test_count_tokens_counts_words() -> None:
    assert count_tokens("the app crashes  on\tlogin\n") == 5
    assert count_tokens("") == 0


def test_more_than_2048_inputs_is_refused_whole() -> None:
    with EmbeddingsServer() as server, client(server) as api:
        with pytest.raises(openai.BadRequestError, match="1 to 2048 items, got 2049"):
            api.embeddings.create(model="m", input=[f"t{i}" for i in range(2049)])
        done = api.embeddings.create(model="m", input=[f"t{i}" for i in range(2048)])
    assert len(done.data) == 2048
    assert [len(r) for r in server.requests] == [2048]
    assert [(r["inputs"], r["status"]) for r in server.log] == [(2049, 400), (2048, 200)]


def test_one_input_over_the_token_limit_refuses_the_whole_request_and_names_it() -> None:
    with EmbeddingsServer(max_input_tokens=10) as server, client(server) as api:
        texts = ["short one", words(10), words(11), "fine"]
        with pytest.raises(openai.BadRequestError) as caught:
            api.embeddings.create(model="m", input=texts)
        assert api.embeddings.create(model="m", input=texts[:2]).usage.total_tokens == 12
    message = caught.value.body["message"]  # type: ignore[index]
    assert "input[2]" in message
    assert "11 tokens, more than the maximum of 10 tokens per input" in message
    assert caught.value.status_code == 400
    assert server.requests == [texts[:2]]  # nothing of the refused request was embedded
    assert server.log[0]["tokens"] == 2 + 10 + 11 + 1


def test_a_request_over_the_total_token_cap_is_refused_whole() -> None:
    with EmbeddingsServer(max_request_tokens=100) as server, client(server) as api:
        with pytest.raises(openai.BadRequestError, match="Requested 120 tokens in 2 inputs"):
            api.embeddings.create(model="m", input=[words(60, "a"), words(60, "b")])
        api.embeddings.create(model="m", input=[words(50, "a"), words(50, "b")])
    assert statuses(server) == [400, 200]
    assert [r["tokens"] for r in server.log] == [120, 100]


def test_requests_over_rpm_get_429_with_retry_after() -> None:
    with EmbeddingsServer(rpm=2) as server, client(server) as api:
        for _ in range(2):
            api.embeddings.create(model="m", input=["a"])
        with pytest.raises(openai.RateLimitError, match=r"requests per min \(RPM\): Limit 2") as e:
            api.embeddings.create(model="m", input=["a"])
    headers = e.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert 0 < int(headers["retry-after-ms"]) <= 60_000
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert statuses(server) == [200, 200, 429]
    assert len(server.requests) == 2


def test_tokens_over_tpm_get_429_and_only_accepted_requests_count() -> None:
    with EmbeddingsServer(tpm=10) as server, client(server) as api:
        api.embeddings.create(model="m", input=[words(6)])
        with pytest.raises(openai.RateLimitError, match="Limit 10, Used 6, Requested 6"):
            api.embeddings.create(model="m", input=[words(6)])
        api.embeddings.create(model="m", input=[words(4)])  # 6 + 4: fits
        with pytest.raises(openai.RateLimitError, match="Request too large") as too_large:
            api.embeddings.create(model="m", input=[words(11)])
    assert too_large.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in too_large.value.response.headers
    assert statuses(server) == [200, 429, 200, 429]
    assert [r["tokens"] for r in server.log] == [6, 6, 4, 11]


def test_the_client_waits_as_told_and_its_retry_passes() -> None:
    """The real client honours retry-after-ms: a short window lets its retry through."""
    with EmbeddingsServer(rpm=1, window=0.2) as server, client(server, retries=1) as api:
        api.embeddings.create(model="m", input=["first"])
        second = api.embeddings.create(model="m", input=["second"])
    assert second.data[0].embedding == vector("second", 16)
    assert statuses(server) == [200, 429, 200]


def test_a_json_lines_log_records_every_request(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    with EmbeddingsServer(rpm=1, log_path=str(path)) as server, client(server) as api:
        api.embeddings.create(model="m", input=["a b", "c"])
        with pytest.raises(openai.RateLimitError):
            api.embeddings.create(model="m", input=["d"])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records == server.log
    assert [(r["inputs"], r["tokens"], r["status"]) for r in records] == [(2, 3, 200), (1, 1, 429)]
    assert records[0]["error"] is None
    assert "Rate limit reached" in records[1]["error"]
    assert records[0]["time"] <= records[1]["time"]


def test_the_server_runs_on_its_own_with_flags(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    flags = ["--port", "0", "--dims", "4", "--max-input-tokens", "3", "--tpm", "5"]
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "local_embeddings_server.py"), *flags, "--log", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once it listens
        assert line.startswith("serving on http://127.0.0.1:")
        base_url = line.split()[-1]
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=0) as api:
            got: Any = api.embeddings.create(model="m", input=["a b c"])
            assert got.data[0].embedding == vector("a b c", 4)
            with pytest.raises(openai.BadRequestError, match="input\\[0\\]"):
                api.embeddings.create(model="m", input=["a b c d"])
            with pytest.raises(openai.RateLimitError):
                api.embeddings.create(model="m", input=["a b c"])  # 3 + 3 > 5 tokens
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert [json.loads(x)["status"] for x in path.read_text().splitlines()] == [200, 400, 429]
