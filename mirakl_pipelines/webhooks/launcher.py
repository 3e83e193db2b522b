"""Start a marketplace's push run as soon as one of its fulfilments is stored, through Dagster's GraphQL API.

The `fulfilment_inbox` sensor ticks at best every 5 s (the sensor daemon's loop); asking the webserver for the run
(`launchRun`) right after the receiver stored the delivery saves that wait. The webhook answer never waits for it
and never depends on it: the launch runs in a background task, and what fails (webserver down, code location
reloading, a timeout) is logged and left to the sensor, which holds fresh deliveries for LAUNCH_DEADLINE_SECONDS and
then requests a run for any delivery no run took.

At most one launch is in flight per marketplace, and deliveries ride along with a push run that will take them (the
sensor's rule, push_runs.takes_delivery): a burst of fulfilments starts one run, as the sensor would.
"""

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Callable

import anyio
import httpx

from mirakl_pipelines.webhooks.push_runs import JOB_NAME, SHIPPING_TAG, WATCHED_STATUSES, push_run_tags, takes_delivery

log = logging.getLogger("mirakl_pipelines.webhooks.launcher")

LAUNCH_DEADLINE_SECONDS = 8.0  # a whole attempt (runs query + launch); the sensor's LAUNCH_GRACE is longer
REQUEST_TIMEOUT = httpx.Timeout(5.0, connect=2.0)

JOBS_QUERY = """
query PushJobLocation {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""
RUNS_QUERY = """
query PushRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status startTime } }
    ... on Error { message }
  }
}
"""
LAUNCH_MUTATION = """
mutation LaunchPushRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""


class LaunchFailed(Exception):
    pass


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class PushLauncher:
    """`delivered(shopify_order_id, received_at)` after each stored fulfilment delivery; the rest is background work.

    `marketplace_of(shopify_order_id)` names the marketplace of an order this project imported (None otherwise); it
    reads the ledger, so it runs in a worker thread. `stats` counts launched, rode_along, failed and not_ours.
    """

    def __init__(self, graphql_url: str, marketplace_of: Callable[[str], str | None], *,
                 deadline: float = LAUNCH_DEADLINE_SECONDS, clock: Callable[[], datetime] = _utc_now):
        self.graphql_url = graphql_url
        self.marketplace_of = marketplace_of
        self.deadline = deadline
        self.clock = clock
        self.stats = {"launched": 0, "rode_along": 0, "failed": 0, "not_ours": 0}
        self._selector: dict | None = None  # the job's repository and code location, asked once
        self._latest: dict[str, datetime] = {}  # the newest delivery stored per marketplace
        self._in_flight: set[str] = set()
        self._tasks: set = set()

    def delivered(self, shopify_order_id: str, received_at: datetime) -> None:
        """Called on the event loop once a fulfilment delivery is stored; returns at once."""
        task = asyncio.get_running_loop().create_task(self._route(shopify_order_id, received_at))
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _route(self, shopify_order_id: str, received_at: datetime) -> None:
        try:
            code = await anyio.to_thread.run_sync(self.marketplace_of, shopify_order_id)
        except Exception as exc:  # the ledger could not be read: the sensor will
            self._log(None, "failed", reason=f"marketplace lookup: {type(exc).__name__}")
            return
        if code is None:
            self.stats["not_ours"] += 1
            return
        self._latest[code] = max(self._latest.get(code, received_at), received_at)
        if code in self._in_flight:
            self.stats["rode_along"] += 1  # stored before the run in flight reaches its step
            return
        self._in_flight.add(code)
        try:
            await self._launch(code)
        finally:
            self._in_flight.discard(code)

    async def _launch(self, code: str) -> None:
        while True:
            seen = self._latest[code]
            started = anyio.current_time()
            try:
                with anyio.fail_after(self.deadline):
                    run_id = await self._launch_unless_taken(code, seen)
            except Exception as exc:  # TimeoutError, httpx errors, LaunchFailed: the sensor takes over
                self.stats["failed"] += 1
                reason = str(exc) if isinstance(exc, LaunchFailed) else type(exc).__name__
                self._log(code, "failed", reason=reason, ms=(anyio.current_time() - started) * 1000, level=logging.WARNING)
                return
            self.stats["launched" if run_id else "rode_along"] += 1
            self._log(code, "launched" if run_id else "rode_along", run_id=run_id,
                      ms=(anyio.current_time() - started) * 1000)
            # A new run takes everything stored before its step. Riding along was decided on `seen`: a delivery
            # stored meanwhile is looked at again (no await between this test and the end of the flight).
            if run_id is not None or self._latest[code] == seen:
                return

    async def _launch_unless_taken(self, code: str, received_at: datetime) -> str | None:
        """The new run's id, or None when a push run of `code` will take deliveries stored until `received_at`."""
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
            runs = await self._query(http, RUNS_QUERY, {"filter": {
                "pipelineName": JOB_NAME, "tags": [{"key": SHIPPING_TAG, "value": code}],
                "statuses": list(WATCHED_STATUSES)}}, "runsOrError", "Runs")
            if any(takes_delivery(r["status"], r["startTime"], received_at.timestamp()) for r in runs["results"]):
                return None
            selector = self._selector or await self._find_job(http)
            tags = push_run_tags(self.clock().date(), code)
            try:
                launched = await self._query(http, LAUNCH_MUTATION, {"executionParams": {
                    "selector": selector, "runConfigData": {},
                    "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}},
                    "launchRun", "LaunchRunSuccess")
            except LaunchFailed:
                self._selector = None  # the code location may have been renamed or reloaded: ask again next time
                raise
            self._selector = selector
            return launched["run"]["runId"]

    async def _find_job(self, http: httpx.AsyncClient) -> dict:
        found = await self._query(http, JOBS_QUERY, {}, "repositoriesOrError", "RepositoryConnection")
        for repository in found["nodes"]:
            if any(job["name"] == JOB_NAME for job in repository["jobs"]):
                return {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"],
                        "jobName": JOB_NAME}
        raise LaunchFailed(f"no code location of the webserver has the job {JOB_NAME}")

    async def _query(self, http: httpx.AsyncClient, document: str, variables: dict, field: str, success: str) -> dict:
        response = await http.post(self.graphql_url, json={"query": document, "variables": variables})
        if response.status_code != 200:
            raise LaunchFailed(f"{field}: HTTP {response.status_code}")
        body = response.json()
        if body.get("errors"):
            raise LaunchFailed(f"{field}: {body['errors'][0].get('message', 'GraphQL error')}"[:300])
        result = (body.get("data") or {}).get(field) or {}
        if result.get("__typename") != success:
            raise LaunchFailed(f"{field}: {result.get('__typename')} {result.get('message') or ''}".strip()[:300])
        return result

    def _log(self, code: str | None, outcome: str, *, reason: str | None = None, run_id: str | None = None,
             ms: float | None = None, level: int = logging.INFO) -> None:
        fields = {"event": "push_launch", "marketplace": code, "outcome": outcome, "run_id": run_id,
                  "ms": None if ms is None else round(ms, 1)}
        if reason:
            fields["reason"] = reason
        log.log(level, json.dumps(fields), extra={"push_launch": fields})
