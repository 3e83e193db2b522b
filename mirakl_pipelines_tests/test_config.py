"""The marketplace configuration file: the shipped one loads, a wrong one fails at load naming file, field and expectation."""

import copy
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from mirakl_pipelines.config import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_PATH,
    ConfigError,
    Settings,
    load_settings,
)

# Field names that would hold a credential if they held a value instead of naming an environment variable.
SECRET_WORDS = ("key", "token", "secret", "password", "credential", "webhook_url")


@pytest.fixture
def shipped() -> dict:
    """The shipped file as plain data, to be broken one way per test."""
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def write(tmp_path: Path, data: object, name: str = "marketplaces.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


# ---- the shipped file ----------------------------------------------------------------------------


def test_shipped_file_loads_as_written(shipped):
    settings = load_settings(DEFAULT_CONFIG_PATH)
    assert [m.code for m in settings.marketplaces] == [m["code"] for m in shipped["marketplaces"]]
    assert [s.name for s in settings.shopify_stores] == [s["name"] for s in shipped["shopify_stores"]]
    for model, raw in zip(settings.marketplaces, shipped["marketplaces"]):
        assert model.base_url == raw["base_url"]
        assert model.api_key_env == raw["api_key_env"]
        assert model.orders.states == raw["orders"]["states"]
        assert model.acceptance.mode == raw["acceptance"]["mode"]
        assert model.acceptance.window_hours == raw["acceptance"]["window_hours"]
        assert model.schedule.cron == raw["schedule"]["cron"]
        # Every marketplace resolves to a declared store (the first one when it names none).
        assert settings.store_for(model).name in {s["name"] for s in shipped["shopify_stores"]}


def test_default_path_and_environment_override(tmp_path, shipped, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    assert [m.code for m in load_settings().marketplaces] == [m["code"] for m in shipped["marketplaces"]]
    only_one = dict(shipped, marketplaces=shipped["marketplaces"][:1])
    monkeypatch.setenv(CONFIG_ENV_VAR, str(write(tmp_path, only_one)))
    assert [m.code for m in load_settings().marketplaces] == [shipped["marketplaces"][0]["code"]]


def test_after_import_loads_when_it_imports_unaccepted_unpaid_orders(tmp_path, shipped):
    market = shipped["marketplaces"][0]
    market["acceptance"]["mode"] = "after_import"
    market["orders"].update(states=["WAITING_ACCEPTANCE", "SHIPPING"], paid_only=False)
    settings = load_settings(write(tmp_path, shipped))
    assert settings.marketplaces[0].acceptance.mode == "after_import"


def test_lookup_of_an_unknown_marketplace_names_the_known_ones():
    settings = load_settings(DEFAULT_CONFIG_PATH)
    with pytest.raises(KeyError) as caught:
        settings.marketplace("amazon_fr")
    message = str(caught.value)
    assert "amazon_fr" in message
    assert all(m.code in message for m in settings.marketplaces)


# ---- realistic mistakes ----------------------------------------------------------------------------


def _set(path: str, value):
    """Mutation setting a dotted path (list indexes as numbers) of the raw data."""

    def mutate(data):
        *parents, last = path.split(".")
        for part in parents:
            data = data[int(part)] if part.isdigit() else data[part]
        data[int(last) if last.isdigit() else last] = value

    return mutate


def _drop(key: str):
    return lambda data: data.pop(key)


def _after_import_without_waiting_acceptance(data):
    market = data["marketplaces"][0]
    market["acceptance"]["mode"] = "after_import"
    market["orders"].update(states=["SHIPPING"], paid_only=False)


def _after_import_paid_only(data):
    market = data["marketplaces"][0]
    market["acceptance"]["mode"] = "after_import"
    market["orders"].update(states=["WAITING_ACCEPTANCE"], paid_only=True)


# (mutation, dotted field path the message must name, fragments saying what is expected)
MISTAKES = {
    "missing marketplaces": (_drop("marketplaces"), "marketplaces", ["Field required"]),
    "empty marketplaces": (_set("marketplaces", []), "marketplaces", ["at least 1 item"]),
    "missing shopify_stores": (_drop("shopify_stores"), "shopify_stores", ["Field required"]),
    "bad cron": (
        _set("marketplaces.0.schedule.cron", "every 15 minutes"),
        "marketplaces.0.schedule.cron",
        ["'every 15 minutes'", "not a valid cron expression", "*/15 * * * *"],
    ),
    "bad close-out cron": (
        _set("marketplaces.1.schedule.closeout_cron", "30 2 * *"),
        "marketplaces.1.schedule.closeout_cron",
        ["'30 2 * *'", "not a valid cron expression"],
    ),
    "unknown Mirakl state": (
        _set("marketplaces.0.orders.states", ["SHIPPING", "SHIPED"]),
        "marketplaces.0.orders.states",
        ["unknown Mirakl order state", "SHIPED", "WAITING_ACCEPTANCE"],
    ),
    "bad base_url": (
        _set("marketplaces.0.base_url", "marketplace-decathlon-eu.mirakl.net"),
        "marketplaces.0.base_url",
        ["https?://", "marketplace-decathlon-eu.mirakl.net"],
    ),
    "lower-case api_key_env": (
        _set("marketplaces.1.api_key_env", "mirakl_leroymerlin_key"),
        "marketplaces.1.api_key_env",
        ["[A-Z_][A-Z0-9_]*", "value not shown"],
    ),
    "after_import without WAITING_ACCEPTANCE": (
        _after_import_without_waiting_acceptance,
        "marketplaces.0",
        ["after_import", "add WAITING_ACCEPTANCE to orders.states"],
    ),
    "after_import with paid_only": (
        _after_import_paid_only,
        "marketplaces.0",
        ["after_import", "orders.paid_only: false"],
    ),
    "typo in a key": (
        _set("marketplaces.0.acceptance.window_hour", 72),
        "marketplaces.0.acceptance.window_hour",
        ["Extra inputs are not permitted"],
    ),
    "wrong type": (
        _set("marketplaces.0.acceptance.window_hours", "three days"),
        "marketplaces.0.acceptance.window_hours",
        ["valid number", "'three days'"],
    ),
    "unknown acceptance mode": (
        _set("marketplaces.1.acceptance.mode", "automatic"),
        "marketplaces.1.acceptance.mode",
        ["'auto'", "'after_import'", "'manual'", "'automatic'"],
    ),
    "bad partitions start date": (
        _set("partitions_start_date", "01/01/2026"),
        "partitions_start_date",
        ["01/01/2026"],
    ),
    "upper-case marketplace code": (
        _set("marketplaces.0.code", "Decathlon-FR"),
        "marketplaces.0.code",
        ["[a-z0-9_]+", "Decathlon-FR"],
    ),
}


@pytest.mark.parametrize("mutation, field, expected", list(MISTAKES.values()), ids=list(MISTAKES))
def test_mistake_fails_at_load_naming_file_field_and_expectation(tmp_path, shipped, mutation, field, expected):
    mutation(shipped)
    path = write(tmp_path, shipped)
    message = load_error(path)
    assert str(path) in message
    assert f"  - {field}: " in message, message
    for fragment in expected:
        assert fragment in message, (fragment, message)


def _duplicate_code(data):
    data["marketplaces"][1]["code"] = data["marketplaces"][0]["code"]


def _unknown_store(data):
    data["marketplaces"][1]["shopify_store"] = "outlet"


@pytest.mark.parametrize(
    "mutation, expected",
    [(_duplicate_code, ["unique", "decathlon_fr"]), (_unknown_store, ["shopify_store", "'outlet'", "'main'"])],
    ids=["duplicate marketplace codes", "unknown shopify_store"],
)
def test_cross_field_mistake_fails_at_load_naming_the_value(tmp_path, shipped, mutation, expected):
    mutation(shipped)
    path = write(tmp_path, shipped)
    message = load_error(path)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    "mutation, field",
    [
        pytest.param(_duplicate_code, "marketplaces.1.code", id="duplicate marketplace codes"),
        pytest.param(_unknown_store, "marketplaces.1.shopify_store", id="unknown shopify_store"),
    ],
)
def test_cross_field_mistake_names_the_entry_and_field(tmp_path, shipped, mutation, field):
    mutation(shipped)
    assert f"  - {field}: " in load_error(write(tmp_path, shipped))


def test_every_mistake_in_a_file_is_reported_at_once(tmp_path, shipped):
    _set("marketplaces.0.schedule.cron", "hourly")(shipped)
    _set("marketplaces.1.base_url", "adeo-marketplace.mirakl.net")(shipped)
    message = load_error(write(tmp_path, shipped))
    assert "marketplaces.0.schedule.cron" in message
    assert "marketplaces.1.base_url" in message


def test_not_yaml_at_all_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "marketplaces.yaml"
    path.write_text("marketplaces: [decathlon_fr\n  - code: : broken\n")
    message = load_error(path)
    assert str(path) in message
    assert "not valid YAML" in message
    assert "line 2" in message


@pytest.mark.parametrize("text", ["just a sentence\n", "", "- a list\n- of things\n"], ids=["scalar", "empty", "list"])
def test_yaml_that_is_not_a_mapping_says_a_mapping_is_expected(tmp_path, text):
    path = tmp_path / "marketplaces.yaml"
    path.write_text(text)
    message = load_error(path)
    assert str(path) in message
    assert "(top level)" in message
    assert "valid dictionary" in message


def test_missing_file_names_the_path_and_why(tmp_path):
    path = tmp_path / "nowhere" / "marketplaces.yaml"
    message = load_error(path)
    assert str(path) in message
    assert "No such file" in message


def test_missing_file_named_by_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "from-env.yaml"
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    with pytest.raises(ConfigError, match="from-env.yaml"):
        load_settings()


# ---- secrets never in the file ---------------------------------------------------------------------


def _models(model: type[BaseModel], seen: set | None = None):
    """`model` and every pydantic model reachable through its fields' annotations."""
    seen = set() if seen is None else seen
    if model in seen:
        return seen
    seen.add(model)
    for info in model.model_fields.values():
        stack = [info.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                _models(annotation, seen)
            stack.extend(typing.get_args(annotation))
    return seen


def test_no_config_field_can_hold_a_secret_only_the_name_of_its_environment_variable():
    models = _models(Settings)
    names = {(m.__name__, name) for m in models for name in m.model_fields}
    # The walk reaches the nested models, so the check below covers the whole file.
    assert {"MarketplaceConfig", "ShopifyStoreConfig", "AlertsConfig"} <= {m.__name__ for m in models}
    secretish = {(model, name) for model, name in names if any(word in name for word in SECRET_WORDS)}
    assert secretish, "expected the *_env fields naming the secrets' variables"
    holding_values = sorted(f"{model}.{name}" for model, name in secretish if not name.endswith("_env"))
    assert holding_values == []


def test_every_model_refuses_unknown_keys_so_a_pasted_secret_cannot_slip_in():
    assert all(model.model_config.get("extra") == "forbid" for model in _models(Settings))


@pytest.mark.parametrize(
    "where, key",
    [("marketplaces.0", "api_key"), ("shopify_stores.0", "access_token"), ("shopify_stores.0", "webhook_secret")],
)
def test_a_secret_pasted_into_the_file_is_refused(tmp_path, shipped, where, key):
    secret = "s3cr3t-value-0123456789"
    _set(f"{where}.{key}", secret)(shipped)
    message = load_error(write(tmp_path, shipped))
    assert f"{where}.{key}" in message
    assert "Extra inputs are not permitted" in message


def test_a_refused_secret_is_not_echoed_in_the_error(tmp_path, shipped):
    secret = "s3cr3t-value-0123456789"
    _set("marketplaces.0.api_key", secret)(shipped)
    assert secret not in load_error(write(tmp_path, shipped))


@pytest.mark.parametrize("where", ["marketplaces.0.api_key_env", "marketplaces.1.fulfilments.invoice.authorization_env"])
def test_a_secret_pasted_where_a_variable_name_belongs_is_not_echoed(tmp_path, shipped, where):
    secret = "Bearer s3cr3t-value"
    shipped["marketplaces"][1]["fulfilments"] = {"invoice": {}}
    _set(where, secret)(shipped)
    message = load_error(write(tmp_path, shipped))
    assert where in message and "should match pattern" in message and secret not in message


def test_shipped_file_names_environment_variables_not_values(shipped):
    settings = load_settings(DEFAULT_CONFIG_PATH)
    env_names = [m.api_key_env for m in settings.marketplaces]
    env_names += [v for s in settings.shopify_stores for v in (s.access_token_env, s.webhook_secret_env)]
    assert all(name == name.upper() and " " not in name for name in env_names)
    text = DEFAULT_CONFIG_PATH.read_text()
    assert "shpat_" not in text  # Shopify admin tokens
    assert all(not isinstance(v, str) or "://" not in v or "@" not in v for v in _leaves(shipped))  # no user:pass@ URLs


def _leaves(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from _leaves(value)
    elif isinstance(data, list):
        for value in data:
            yield from _leaves(value)
    else:
        yield data


def test_loading_does_not_share_state_between_files(tmp_path, shipped):
    """Two different files load to two different settings (no module-level cache in load_settings)."""
    first = write(tmp_path, shipped, "a.yaml")
    other = copy.deepcopy(shipped)
    other["marketplaces"][0]["acceptance"]["window_hours"] = 24
    second = write(tmp_path, other, "b.yaml")
    assert load_settings(first).marketplaces[0].acceptance.window_hours != load_settings(second).marketplaces[0].acceptance.window_hours

