"""Open-loop load test: Poisson arrivals at fixed rates, then the highest rate whose p95 meets the SLA.

Open loop means requests are sent at their scheduled times whether or not earlier ones have answered,
and each latency is measured from the *scheduled* send time. A closed-loop tester (send, wait, send)
slows down with the server and never sees the queue it would have built: "coordinated omission", which
makes an overloaded server look fine. Here a slow server shows up as growing latencies.

Bounded by construction: one target URL, at most MAX_RATE_PER_S requests/s, MAX_REQUESTS_PER_STEP per
step, MAX_IN_FLIGHT connections, every request under a timeout, and a fixed number of steps.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

import numpy as np

from bakeoff.errors import BakeoffError

MAX_RATE_PER_S = 5_000.0
MAX_DURATION_S = 600.0
MAX_REQUESTS_PER_STEP = 100_000
MAX_IN_FLIGHT = 512
MAX_BISECT_STEPS = 8


@dataclass(frozen=True)
class LoadPlan:
    """What to send, where, how fast and for how long."""

    url: str  # the classify endpoint
    rates_per_s: tuple[float, ...]  # requests per second, one step each (ascending)
    duration_s: float  # per step
    sla_p95_ms: float
    texts: tuple[str, ...] = field(repr=False)
    texts_per_request: int = 1
    timeout_s: float = 10.0
    bisect_steps: int = 3
    seed: int = 0
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class StepResult:
    rate_per_s: float  # offered (scheduled) request rate
    sent: int
    ok: int
    errors: int  # non-200 answers and connection failures
    timeouts: int
    achieved_per_s: float  # answered requests / (last answer - step start)
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_p99: float | None
    within_sla: bool
    error_kinds: dict[str, int] = field(default_factory=dict)  # "HTTP 401": 6, "ConnectError": 3, "timeout": 1

    def as_dict(self) -> dict:
        return asdict(self)


def check_plan(plan: LoadPlan) -> None:
    if not plan.url.startswith(("http://", "https://")):
        raise BakeoffError(f"URL `{plan.url}` must start with http:// or https://")
    if not plan.rates_per_s or any(not 0 < r <= MAX_RATE_PER_S for r in plan.rates_per_s):
        raise BakeoffError(f"--rate: give rates between 0 and {MAX_RATE_PER_S:g} requests/s, e.g. --rate 1,2,4,8")
    if not 0 < plan.duration_s <= MAX_DURATION_S:
        raise BakeoffError(f"--duration must be in (0, {MAX_DURATION_S:g}] seconds")
    if max(plan.rates_per_s) * plan.duration_s > MAX_REQUESTS_PER_STEP:
        raise BakeoffError(
            f"--rate x --duration asks for over {MAX_REQUESTS_PER_STEP} requests in one step; lower one of them"
        )
    if not 0 <= plan.bisect_steps <= MAX_BISECT_STEPS:
        raise BakeoffError(f"--bisect must be between 0 and {MAX_BISECT_STEPS}")
    if not plan.texts:
        raise BakeoffError("no texts to send: pass --texts FILE (one text per line) or --run RUN_DIR")
    if not (math.isfinite(plan.sla_p95_ms) and plan.sla_p95_ms > 0):
        raise BakeoffError(f"--sla-p95-ms must be a positive number of milliseconds, not {plan.sla_p95_ms:g}")


def arrival_offsets_s(rate_per_s: float, duration_s: float, rng: random.Random) -> list[float]:
    """Poisson process: exponential gaps with mean 1/rate, until the step's duration."""
    offsets, t = [], rng.expovariate(rate_per_s)
    while t < duration_s and len(offsets) < MAX_REQUESTS_PER_STEP:
        offsets.append(t)
        t += rng.expovariate(rate_per_s)
    return offsets


async def run_step(client, plan: LoadPlan, rate_per_s: float, seed: int) -> StepResult:
    import httpx

    rng = random.Random(seed)
    offsets = arrival_offsets_s(rate_per_s, plan.duration_s, rng)
    bodies = [{"texts": [rng.choice(plan.texts) for _ in range(plan.texts_per_request)]} for _ in offsets]
    loop = asyncio.get_running_loop()
    outcomes: list[tuple[str, float, float]] = []  # (status, latency_ms, finished_at)
    kinds: Counter[str] = Counter()

    async def one(scheduled: float, body: dict) -> None:
        try:
            response = await client.post(plan.url, json=body)
            status = "ok" if response.status_code == 200 else "error"
            if status == "error":
                kinds[f"HTTP {response.status_code}"] += 1
        except httpx.TimeoutException:
            status = "timeout"
            kinds["timeout"] += 1
        except httpx.HTTPError as err:
            status = "error"
            kinds[type(err).__name__] += 1
        finished = loop.time()
        outcomes.append((status, 1000 * (finished - scheduled), finished))

    start = loop.time()
    tasks = []
    for offset, body in zip(offsets, bodies):
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(start + offset, body)))
    await asyncio.gather(*tasks)
    return replace(summarize(rate_per_s, outcomes, start, plan.sla_p95_ms), error_kinds=dict(kinds))


def summarize(
    rate_per_s: float, outcomes: list[tuple[str, float, float]], start: float, sla_p95_ms: float
) -> StepResult:
    ok = [(latency, finished) for status, latency, finished in outcomes if status == "ok"]
    timeouts = sum(status == "timeout" for status, _, _ in outcomes)
    errors = len(outcomes) - len(ok) - timeouts
    latencies = np.array([latency for latency, _ in ok])
    span = max((finished for _, finished in ok), default=start) - start
    p50, p95, p99 = (float(np.percentile(latencies, q)) for q in (50, 95, 99)) if len(latencies) else (None, None, None)
    within = bool(outcomes) and len(ok) == len(outcomes) and p95 is not None and p95 <= sla_p95_ms
    return StepResult(
        rate_per_s, len(outcomes), len(ok), errors, timeouts, len(ok) / span if span > 0 else 0.0, p50, p95, p99, within
    )


def connection_lost(step: StepResult | dict) -> dict[str, int]:
    """The step's failures that were no HTTP answer at all (connection refused or reset, protocol errors): a
    server that went away, not one that was slow (timeouts) or said no (an HTTP status)."""
    kinds = step.error_kinds if isinstance(step, StepResult) else (step.get("error_kinds") or {})
    return {kind: n for kind, n in kinds.items() if not kind.startswith("HTTP ") and kind != "timeout"}


async def _drain(client, health_url: str, timeout_s: float) -> None:
    """Wait (bounded) until the server's queue is empty, so one step's backlog does not spill into the next."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (await client.get(health_url)).json().get("queue_depth", 0) == 0:
                return
        except Exception:  # noqa: BLE001 - a server without /healthz: fall back to a fixed pause
            await asyncio.sleep(min(1.0, timeout_s))
            return
        await asyncio.sleep(0.05)


async def search(plan: LoadPlan, on_step=None) -> dict:
    """Step through the rates, then bisect between the last rate within the SLA and the first beyond it."""
    import httpx

    check_plan(plan)
    health_url = plan.url.rsplit("/v1/", 1)[0] + "/healthz"
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    timeout = httpx.Timeout(plan.timeout_s)
    steps: list[StepResult] = []
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=dict(plan.headers), trust_env=False) as client:
        server = await _server_info(client, health_url)

        async def measure(rate: float) -> StepResult:
            result = await run_step(client, plan, rate, plan.seed + len(steps))
            steps.append(result)
            if on_step is not None:
                on_step(result)
            await _drain(client, health_url, plan.timeout_s)
            return result

        good, bad = None, None
        for rate in sorted(plan.rates_per_s):
            if (await measure(rate)).within_sla:
                good = rate
            else:
                bad = rate
                break  # higher rates would only overload it more
        if good is not None and bad is not None and not connection_lost(steps[-1]):
            for _ in range(plan.bisect_steps):
                middle = (good + bad) / 2
                step = await measure(middle)
                if connection_lost(step):
                    break  # the server went away: more steps would only measure a dead server
                if step.within_sla:
                    good = middle
                else:
                    bad = middle
        # Asked again at the end: a server that died, hung or was replaced during the test answers differently.
        server_after = await _server_info(client, health_url)
    best = max((s for s in steps if s.within_sla), key=lambda s: s.rate_per_s, default=None)
    return {
        "url": plan.url,
        "sla_p95_ms": plan.sla_p95_ms,
        "duration_s_per_step": plan.duration_s,
        "texts_per_request": plan.texts_per_request,
        "steps": [s.as_dict() for s in steps],
        "max_rate_within_sla_per_s": best.rate_per_s if best else None,
        "max_items_per_s_within_sla": best.rate_per_s * plan.texts_per_request if best else None,
        "latency_ms_p95_at_max": best.latency_ms_p95 if best else None,
        "limit_found": bad is not None and best is not None,
        "server": server,
        "server_after": server_after,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def server_info(endpoint: str, headers: tuple[tuple[str, str], ...] = ()) -> dict | None:
    """The /healthz of the server behind `endpoint` (a /v1/classify URL), or None if it has none."""
    import httpx

    async def fetch() -> dict | None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), headers=dict(headers), trust_env=False) as client:
            return await _server_info(client, endpoint.rsplit("/v1/", 1)[0] + "/healthz")

    return asyncio.run(fetch())


async def _server_info(client, health_url: str) -> dict | None:
    try:
        response = await client.get(health_url)
        info = response.json() if response.status_code == 200 else None
        return info if isinstance(info, dict) else None
    except Exception:  # noqa: BLE001 - any server can be load-tested; /healthz is a bonus
        return None


def parse_rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise BakeoffError(f"--rate `{text}`: give comma-separated numbers, e.g. --rate 1,2,4,8") from None
    if any(not math.isfinite(r) for r in rates):
        raise BakeoffError(f"--rate `{text}`: rates must be finite numbers")
    return rates
