"""The sandbox in a process of its own, so a benchmark can tell its CPU from the pipeline's.

    python -m mirakl_pipelines.bench.sandbox_process --info sandbox.json --workdir DIR [options]

Starts `start_sandbox(...)` (optionally the scenario and, with --shipping, the Shopify side of shipping
as `mirakl-pipelines demo` runs it: the webhook receiver on the work directory's ledger, subscribed to the
store, and the warehouse), writes the servers' URLs, the keys (as the environment the pipelines read) and
the pipelines' settings to the JSON file, then serves until SIGTERM/SIGINT.
"""

import argparse
import json
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path

from mirakl_pipelines.bench.stock_control import seed_stock_catalogue, serve_stock_control
from mirakl_pipelines.demo import start_sandbox, start_shipping


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mirakl_pipelines.bench.sandbox_process", description=__doc__)
    parser.add_argument("--info", required=True, help="JSON file to write the URLs, keys and settings to")
    parser.add_argument("--workdir", required=True, help="where the pipelines' ledger and warehouse go")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate-limit-scale", type=float, default=1.0)
    parser.add_argument("--debit-delay", type=float, default=20.0, help="seconds from acceptance to the customer's debit")
    parser.add_argument("--backlog", type=int, default=0)
    parser.add_argument("--scenario-orders-per-minute", type=float, default=0.0,
                        help="run the scenario at this rate per marketplace (0: no scenario)")
    parser.add_argument("--cron", default="* * * * *")
    parser.add_argument("--shipping", action="store_true",
                        help="also run the webhook receiver (subscribed to the store) and the warehouse, as the demo does")
    parser.add_argument("--warehouse-delay", type=float, default=30.0, help="seconds before the warehouse fulfils an order")
    parser.add_argument("--partial-share", type=float, default=0.1, help="share of orders the warehouse ships in two parcels")
    parser.add_argument("--unknown-carrier-share", type=float, default=0.05, help="share of orders sent with an unmapped carrier")
    parser.add_argument("--dagster-graphql-url", default=None,
                        help="the receiver starts each fulfilment's push run through this GraphQL endpoint")
    parser.add_argument("--stock-skus", type=int, default=0,
                        help="seed this many extra SKUs × every store location, with offers (stock benchmarks)")
    parser.add_argument("--stock-marketplaces", nargs="*", default=["decathlon_fr"],
                        help="the marketplaces that list the --stock-skus SKUs")
    parser.add_argument("--stock-control", action="store_true",
                        help="also serve the stock benchmarks' control app (bench/stock_control.py)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sandbox = start_sandbox(seed=args.seed, orders_per_minute=args.scenario_orders_per_minute or 1.0,
                            rate_limit_scale=args.rate_limit_scale, debit_delay=timedelta(seconds=args.debit_delay),
                            backlog=args.backlog, plain=True)  # comparable from one benchmark run to the next
    receiver = warehouse = control = None
    try:
        if args.stock_skus:
            seed_stock_catalogue(sandbox, args.stock_skus, args.stock_marketplaces, seed=args.seed)
        if args.stock_control:
            control = serve_stock_control(sandbox, seed=args.seed)
        if args.shipping:
            receiver, warehouse = start_shipping(
                sandbox, f"sqlite:///{Path(args.workdir) / 'ledger.sqlite'}", seed=args.seed,
                delay_seconds=args.warehouse_delay, partial_share=args.partial_share,
                unknown_carrier_share=args.unknown_carrier_share, dagster_graphql_url=args.dagster_graphql_url)
        if args.scenario_orders_per_minute > 0:
            sandbox.start_scenario()
        info = {
            "pid": os.getpid(),
            "urls": {name: server.url for name, server in sandbox.servers.items()},
            # Apart from "urls": every url there is a simulator with /_sandbox/faults (SandboxProcess.set_faults).
            "receiver_url": receiver.url if receiver else None,
            "stock_control_url": control.url if control else None,
            "env": sandbox.env(),
            "settings": sandbox.settings_dict(Path(args.workdir), cron=args.cron),
        }
        target = Path(args.info)
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(info, indent=2))
        partial.replace(target)  # the parent polls for the file: it must never see half of it
        stop.wait()
    finally:
        if warehouse is not None:
            warehouse.stop()
        sandbox.stop()
        if control is not None:
            control.stop()
        if receiver is not None:
            receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
