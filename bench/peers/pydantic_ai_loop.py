#!/usr/bin/env python3
"""PydanticAI per-call overhead vs a raw HTTP call, against an OpenAI-compatible endpoint.

    $VENV_PAI/bin/python bench/peers/pydantic_ai_loop.py --base-url http://127.0.0.1:PORT/v1 \
        [--n 500] [--warmup 50] [--api-key sk-stub] [--model stub-model]

Runs with the `venv-pai` venv made by bench/peers/setup (pydantic-ai-slim[openai]==2.68.0 + httpx).
Meant to point at an instant stub, so what is measured is client-side cost.

Two sequential loops, each `--warmup` untimed calls then `--n` timed calls:
  baseline  raw httpx.Client POST of a chat-completions body with response_format json_schema
            for Sentiment, then Sentiment.model_validate_json(message.content)
  agent     Agent(OpenAIChatModel(model, provider=OpenAIProvider(base_url, api_key)),
                  output_type=NativeOutput(Sentiment)).run_sync(prompt)

Prints ONE JSON object on stdout:
  {"pydantic_ai_version", "n", "warmup", "baseline_ms": {p50,p90,p99,max,mean}, "agent_ms": {...},
   "overhead_mean_ms", "overhead_p50_ms", ...}
Percentiles are nearest-rank over the n samples. Any non-200 answer or any answer that does not
parse as Sentiment aborts with a message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import math
import statistics
import sys
import time
import traceback
from typing import Literal

import httpx
from pydantic import BaseModel

from pydantic_ai import Agent, NativeOutput
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

PROMPT = "Classify the sentiment of this review: 'I love this product, it works great.'"


class Sentiment(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    score: float


def die(msg: str) -> None:
    print(f"pydantic_ai_loop: ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def summarize(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    n = len(ms)

    def pct(p: float) -> float:
        return ms[max(0, math.ceil(p * n) - 1)]

    return {
        "p50": round(pct(0.50), 4),
        "p90": round(pct(0.90), 4),
        "p99": round(pct(0.99), 4),
        "max": round(ms[-1], 4),
        "mean": round(statistics.fmean(ms), 4),
    }


def _strip_titles(node):
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def baseline_body(model: str) -> dict:
    # Same response_format PydanticAI 2.68's NativeOutput sends (checked against a logging
    # stub): strict json_schema, no "title" keys, additionalProperties false.
    schema = _strip_titles(Sentiment.model_json_schema())
    schema["additionalProperties"] = False
    return {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Sentiment", "schema": schema, "strict": True},
        },
    }


def run_baseline(base_url: str, api_key: str, model: str, warmup: int, n: int) -> list[int]:
    url = base_url.rstrip("/") + "/chat/completions"
    body = baseline_body(model)
    headers = {"Authorization": f"Bearer {api_key}"}
    samples: list[int] = []
    with httpx.Client(timeout=30.0) as client:
        for i in range(warmup + n):
            t0 = time.perf_counter_ns()
            try:
                r = client.post(url, json=body, headers=headers)
            except httpx.HTTPError as e:
                die(f"baseline call {i}: POST {url} failed: {e!r}")
            if r.status_code != 200:
                die(f"baseline call {i}: HTTP {r.status_code}: {r.text[:500]}")
            try:
                content = r.json()["choices"][0]["message"]["content"]
                out = Sentiment.model_validate_json(content)
            except Exception as e:  # noqa: BLE001 - report anything that does not parse
                die(f"baseline call {i}: answer does not parse as Sentiment: {e!r}; body={r.text[:500]}")
            dt = time.perf_counter_ns() - t0
            if not isinstance(out, Sentiment):
                die(f"baseline call {i}: unexpected output {out!r}")
            if i >= warmup:
                samples.append(dt)
    return samples


def run_agent(base_url: str, api_key: str, model: str, warmup: int, n: int) -> list[int]:
    agent = Agent(
        OpenAIChatModel(model, provider=OpenAIProvider(base_url=base_url, api_key=api_key)),
        output_type=NativeOutput(Sentiment),
    )
    samples: list[int] = []
    for i in range(warmup + n):
        t0 = time.perf_counter_ns()
        try:
            result = agent.run_sync(PROMPT)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            die(f"agent call {i}: run_sync failed (answer did not parse or HTTP error): {e!r}")
        dt = time.perf_counter_ns() - t0
        if not isinstance(result.output, Sentiment):
            die(f"agent call {i}: output is {type(result.output).__name__}, not Sentiment: {result.output!r}")
        if i >= warmup:
            samples.append(dt)
    return samples


def loadavg() -> float | None:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:18000/v1")
    ap.add_argument("--n", type=int, default=500, help="timed calls per loop (default 500)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed calls per loop before timing (default 50)")
    ap.add_argument("--api-key", default="sk-stub")
    ap.add_argument("--model", default="stub-model")
    a = ap.parse_args()
    if a.n < 1 or a.warmup < 0:
        die("--n must be >= 1 and --warmup >= 0")

    load_start = loadavg()
    base = run_baseline(a.base_url, a.api_key, a.model, a.warmup, a.n)
    agent = run_agent(a.base_url, a.api_key, a.model, a.warmup, a.n)
    b, g = summarize(base), summarize(agent)
    out = {
        "pydantic_ai_version": md.version("pydantic-ai-slim"),
        "n": a.n,
        "baseline_ms": b,
        "agent_ms": g,
        "overhead_mean_ms": round(g["mean"] - b["mean"], 4),
        "overhead_p50_ms": round(g["p50"] - b["p50"], 4),
        "warmup": a.warmup,
        "openai_version": md.version("openai"),
        "httpx_version": md.version("httpx"),
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
