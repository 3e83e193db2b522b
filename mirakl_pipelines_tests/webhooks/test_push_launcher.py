"""The receiver starts a fulfilment's push run through Dagster's GraphQL API (issue 9 §6), against a small fake
GraphQL endpoint on loopback (a real webserver is what the shipping benchmark runs): one run per marketplace, with the
sensor's job, partition and tags; deliveries ride along with a run not started yet; a failing endpoint never changes
the webhook's 200. The documents themselves are validated against Dagster's own GraphQL schema."""

import threading
import time
from datetime import datetime, timezone

import anyio
import dagster as dg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.defs.partitions import daily_by_marketplace, partition_key
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.server import free_port, serve_in_thread
from mirakl_pipelines.webhooks.launcher import JOBS_QUERY, LAUNCH_MUTATION, RUNS_QUERY
from mirakl_pipelines.webhooks.push_runs import JOB_NAME, SHIPPING_TAG, push_run_tags
from mirakl_pipelines_tests.webhooks.deliveries import encode, fulfilment_payload, headers, running_receiver

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DEC, LM = "decathlon_fr", "leroymerlin_fr"
LOCATION, REPOSITORY = "mirakl_pipelines.definitions", "__repository__"


class FakeDagster:
    """`/graphql` answering the launcher's three documents; `runs` is what runsOrError returns (status, startTime)."""

    def __init__(self, *, launch_delay: float = 0.0, status: int = 200):
        self.launches: list[dict] = []
        self.runs_queries: list[dict] = []
        self.runs: dict[str, list[dict]] = {}  # marketplace → [{"status": …, "startTime": …}]
        self.launch_delay = launch_delay
        self.status = status
        self.lock = threading.Lock()
        app = Starlette(routes=[Route("/graphql", self.graphql, methods=["POST"])])
        self.server = serve_in_thread(app, name="fake-dagster")
        self.url = f"{self.server.url}/graphql"

    async def graphql(self, request: Request) -> Response:
        if self.status != 200:
            return Response("down", status_code=self.status)
        body = await request.json()
        query, variables = body["query"], body["variables"]
        if query == JOBS_QUERY:
            return JSONResponse({"data": {"repositoriesOrError": {"__typename": "RepositoryConnection", "nodes": [
                {"name": REPOSITORY, "location": {"name": LOCATION}, "jobs": [{"name": "orders_sync"}, {"name": JOB_NAME}]}]}}})
        if query == RUNS_QUERY:
            self.runs_queries.append(variables["filter"])
            code = variables["filter"]["tags"][0]["value"]
            results = [{"runId": f"r{n}", **r} for n, r in enumerate(self.runs.get(code, []))]
            return JSONResponse({"data": {"runsOrError": {"__typename": "Runs", "results": results}}})
        assert query == LAUNCH_MUTATION
        await anyio.sleep(self.launch_delay)
        with self.lock:
            self.launches.append(variables["executionParams"])
            run_id = f"run-{len(self.launches)}"
        return JSONResponse({"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": run_id}}}})

    def launched_for(self) -> list[str]:
        return [dict((t["key"], t["value"]) for t in p["executionMetadata"]["tags"])[SHIPPING_TAG] for p in self.launches]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def fake_dagster():
    fake = FakeDagster()
    yield fake
    fake.stop()


def _link(ledger: Ledger, marketplace: str, order_id: str, shopify_id: int) -> None:
    ledger.observe_order(marketplace, order_id, commercial_id=None, mirakl_state="SHIPPING", created_at=T0,
                         updated_at=T0, acceptance_deadline=None, eligible=True, skip_reason=None, now=T0)
    ledger.record_import(marketplace, order_id, shopify_order_id=f"gid://shopify/Order/{shopify_id}",
                         shopify_order_name=None, shopify_legacy_id=str(shopify_id), now=T0)


def _deliver(receiver, order_id: int, fulfilment_id: int):
    body = encode(fulfilment_payload(fulfillment_id=fulfilment_id, order_id=order_id))
    return receiver.post(body, headers(body))


def _settle(launcher, seconds: float = 10.0) -> None:
    """Wait for the launcher's background tasks to finish."""
    deadline = time.monotonic() + seconds
    while launcher._tasks or launcher._in_flight:
        assert time.monotonic() < deadline, "the launcher's tasks did not finish"
        time.sleep(0.02)


def test_a_delivery_launches_its_marketplaces_push_run_with_the_sensors_job_partition_and_tags(tmp_path, fake_dagster):
    with running_receiver(tmp_path, dagster_graphql_url=fake_dagster.url) as receiver:
        _link(receiver.ledger, DEC, "D-1", 11)
        _link(receiver.ledger, LM, "L-1", 21)
        assert _deliver(receiver, 11, 1).json() == {"status": "stored"}
        assert _deliver(receiver, 21, 2).json() == {"status": "stored"}
        assert _deliver(receiver, 99, 3).json() == {"status": "stored"}  # not imported by this project: no run
        launcher = receiver.server.server.config.app.state.launcher
        _settle(launcher)
        today = datetime.now(timezone.utc).date()
    assert sorted(fake_dagster.launched_for()) == [DEC, LM]
    assert launcher.stats == {"launched": 2, "rode_along": 0, "failed": 0, "not_ours": 1}
    partitions = daily_by_marketplace(load_settings())
    for params in fake_dagster.launches:
        assert params["selector"] == {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": JOB_NAME}
        tags = {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]}
        code = tags[SHIPPING_TAG]
        # What Dagster gives the sensor's RunRequest(partition_key=…, tags={SHIPPING_TAG: code}).
        assert tags == {**partitions.get_tags_for_partition_key(partition_key(today, code)), SHIPPING_TAG: code}
        assert tags == push_run_tags(today, code)
    assert fake_dagster.runs_queries[0]["statuses"] == ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]


def test_a_burst_starts_one_run_and_later_deliveries_ride_along_with_a_run_not_started(tmp_path):
    fake = FakeDagster(launch_delay=0.5)
    try:
        with running_receiver(tmp_path, dagster_graphql_url=fake.url) as receiver:
            _link(receiver.ledger, DEC, "D-1", 11)
            launcher = receiver.server.server.config.app.state.launcher
            for n in range(5):  # while the first launch is in flight
                assert _deliver(receiver, 11, 100 + n).status_code == 200
            _settle(launcher)
            assert fake.launched_for() == [DEC]

            fake.runs[DEC] = [{"status": "QUEUED", "startTime": None}]  # the launched run waits in the queue
            _deliver(receiver, 11, 200)
            _settle(launcher)
            assert fake.launched_for() == [DEC]  # rides along: that run's step takes it

            fake.runs[DEC] = [{"status": "STARTED", "startTime": time.time() - 60}]  # started before: may have taken the inbox
            _deliver(receiver, 11, 300)
            _settle(launcher)
            assert fake.launched_for() == [DEC, DEC]
            assert launcher.stats["launched"] == 2 and launcher.stats["failed"] == 0
    finally:
        fake.stop()


@pytest.mark.parametrize("failure", ["http 500", "unreachable", "too slow"])
def test_a_failing_endpoint_never_changes_the_webhooks_answer(tmp_path, failure):
    fake = FakeDagster(status=500 if failure == "http 500" else 200, launch_delay=3 if failure == "too slow" else 0)
    url = f"http://127.0.0.1:{free_port()}/graphql" if failure == "unreachable" else fake.url
    try:
        with running_receiver(tmp_path, dagster_graphql_url=url) as receiver:
            _link(receiver.ledger, DEC, "D-1", 11)
            launcher = receiver.server.server.config.app.state.launcher
            launcher.deadline = 1.0
            started = time.monotonic()
            response = _deliver(receiver, 11, 1)
            assert (response.status_code, response.json()) == (200, {"status": "stored"})
            assert time.monotonic() - started < 1.0  # answered before the launch gave up
            _settle(launcher)
            assert launcher.stats["failed"] == 1 and launcher.stats["launched"] == 0
            assert receiver.ledger.unprocessed(topics=None)[0].shopify_order_id == "11"  # left for the sensor
    finally:
        fake.stop()


def test_the_launchers_documents_are_valid_against_dagsters_graphql_schema():
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    schema = create_schema().graphql_schema
    for document in (JOBS_QUERY, RUNS_QUERY, LAUNCH_MUTATION):
        assert validate(schema, parse(document)) == [], document
    # The statuses the launcher filters on are Dagster's run statuses.
    assert {s.value for s in dg.DagsterRunStatus} >= {"QUEUED", "NOT_STARTED", "STARTING", "STARTED"}



def test_the_endpoint_is_optional_and_must_be_an_http_url(tmp_path):
    import yaml

    from mirakl_pipelines.config import DEFAULT_CONFIG_PATH, ConfigError
    from mirakl_pipelines.webhooks import create_webhook_app

    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert load_settings().webhooks.dagster_graphql_url is None  # absent: the sensor alone starts push runs
    path = tmp_path / "marketplaces.yaml"
    path.write_text(yaml.safe_dump({**data, "webhooks": {"dagster_graphql_url": "127.0.0.1:3000/graphql"}}))
    with pytest.raises(ConfigError, match="webhooks.dagster_graphql_url"):
        load_settings(path)
    ledger_url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    for url, launches in ((None, False), ("http://127.0.0.1:3000/graphql", True)):
        app = create_webhook_app(ledger_url, ["s"], dagster_graphql_url=url)
        assert (app.state.launcher is not None) == launches
        app.state.ledger.close()
