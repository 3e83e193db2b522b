"""schemathesis drives the sandbox's offers and stock operations with requests generated from the official seller
spec (as test_mirakl_schemathesis.py does for orders and shipments, with its checks): never a 5xx, a declared
status answers its declared schema and content type, an undeclared one is a 4xx with the classic body.
OF54 is left out: the spec models it as a placeholder path (its URLs come from OF53)."""

import copy
from datetime import timedelta

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.mirakl_spec import prepared_spec
from mirakl_pipelines_tests.sandbox.mirakl.conftest import KEY, make_sim, stock_file
from mirakl_pipelines_tests.sandbox.test_mirakl_schemathesis import CHECKS

OPERATIONS = ("OF21", "OF52", "OF53", "STO01", "STO02", "STO03")
MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def api_schema():
    return schemathesis.openapi.from_dict(copy.deepcopy(prepared_spec()))


@pytest.fixture
def sandbox():
    """Offers, a finished import with an error report, one still waiting, and a completed export to aim at."""
    sim = make_sim()
    sim.limiter.scale = 1e-9
    done = sim.offers.start_import(stock_file('"ALP-TRAIL-42";"3";"";""', '"NOPE";"1";"";""'))["import_id"]
    sim.advance(timedelta(minutes=1))
    waiting = sim.offers.start_import(stock_file('"ALP-TRAIL-42";"4";"";""'))["import_id"]
    export = sim.offers.start_export({"export_type": "application/json"})["tracking_id"]
    server = serve_in_thread(create_mirakl_app(sim), name="mirakl-offers-schemathesis")
    with requests.Session() as session:
        session.headers["Authorization"] = KEY
        yield {"import_id": [done, waiting], "tracking_id": [export]}, server.url, session
    server.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_offer_operations_conform_to_the_spec(operation_id, mode, api_schema, sandbox):
    ids, base_url, session = sandbox
    operation = api_schema.find_operation_by_id(operation_id)
    seen: set[int] = set()

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode), aim=st.booleans(), rng=st.randoms(use_true_random=False))
    def run(case, aim, rng):
        for name, known in ids.items():
            if aim and name in (case.path_parameters or {}):
                case.path_parameters[name] = rng.choice(known)
        response = case.call(base_url=base_url, session=session)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()
    assert seen, f"{operation_id}: no request was made"
    if mode == GenerationMode.POSITIVE:  # success paths were fuzzed too, not only refusals
        assert any(200 <= status < 300 for status in seen), f"{operation_id}: only {sorted(seen)}"
