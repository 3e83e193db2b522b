"""The one Definitions object: built from the marketplace configuration file."""

import os

import dagster as dg
import pyarrow as pa

from mirakl_pipelines.config import CONFIG_ENV_VAR, RATE_LIMIT_SCALE_ENV, Settings, load_settings
from mirakl_pipelines.defs.alerts import build_run_failure_sensor
from mirakl_pipelines.defs.fulfilments.assets import (
    build_shipment_assets,
    build_shipment_automation,
    build_shipments_job,
)
from mirakl_pipelines.defs.orders.assets import build_order_assets
from mirakl_pipelines.defs.orders.automation import build_order_schedules, build_order_sensors, build_orders_job
from mirakl_pipelines.defs.partitions import daily_by_marketplace
from mirakl_pipelines.defs.resources import build_resources
from mirakl_pipelines.defs.stock.assets import build_stock_assets
from mirakl_pipelines.defs.stock.automation import build_stock_automation, build_stock_job

# Arrow's bundled allocator (mimalloc) keeps the pages it freed for later reuse, so a run's RSS kept the high mark of
# every chunk it had read; the system allocator gives them back (measured: −30 MiB at the peak of a 10,000-order day).
pa.set_memory_pool(pa.system_memory_pool())


def build_definitions(settings: Settings, config_path: str | None = None, rate_limit_scale: float = 1.0) -> dg.Definitions:
    partitions = daily_by_marketplace(settings)
    order_assets = build_order_assets(partitions)
    orders_job = build_orders_job(order_assets, partitions)
    shipment_assets = build_shipment_assets(partitions)
    shipments_job = build_shipments_job(shipment_assets, partitions)
    shipment_sensors, sweep_schedules = build_shipment_automation(settings, shipments_job)
    stock_assets = build_stock_assets(partitions)
    stock_job = build_stock_job(stock_assets, partitions)
    stock_sensors, stock_schedules = build_stock_automation(settings, stock_job)
    return dg.Definitions(
        assets=order_assets + shipment_assets + stock_assets,
        jobs=[orders_job, shipments_job, stock_job],
        schedules=build_order_schedules(settings, orders_job) + sweep_schedules + stock_schedules,
        sensors=[build_run_failure_sensor(settings), *build_order_sensors(settings, orders_job), *shipment_sensors,
                 *stock_sensors],
        resources=build_resources(settings, config_path, rate_limit_scale),
    )


def _load() -> dg.Definitions:
    path = os.environ.get(CONFIG_ENV_VAR)
    return build_definitions(load_settings(path), path, float(os.environ.get(RATE_LIMIT_SCALE_ENV, "1")))


defs = _load()
