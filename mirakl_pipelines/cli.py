"""`mirakl-pipelines`: the demo, the sandbox alone, and what operators need day to day."""

import argparse
import json
import sys

from mirakl_pipelines.config import ConfigError, load_settings


def _cmd_demo(args: argparse.Namespace) -> int:
    from mirakl_pipelines.demo import run_demo

    return run_demo(port=args.port, seed=args.seed, orders_per_minute=args.orders_per_minute, workdir=args.workdir,
                    duration=args.duration)


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from mirakl_pipelines.demo import run_sandbox_only

    return run_sandbox_only(seed=args.seed, orders_per_minute=args.orders_per_minute, workdir=args.workdir)


def _cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    print(f"ok: {len(settings.marketplaces)} marketplace(s): {', '.join(m.code for m in settings.marketplaces)}")
    return 0


def _cmd_exceptions(args: argparse.Namespace) -> int:
    from mirakl_pipelines.ledger import Ledger

    ledger = Ledger.connect(load_settings(args.config).ledger_url())
    try:
        rows = ledger.open_exceptions(args.marketplace)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps([{"id": r.id, "marketplace": r.marketplace, "kind": r.kind, "record": r.record_id,
                           "reason": r.reason, "occurrences": r.occurrences,
                           "last_seen_at": r.last_seen_at.isoformat()} for r in rows], indent=2))
    else:
        for r in rows:
            print(f"#{r.id} {r.marketplace} {r.kind} {r.record_id} (x{r.occurrences}, last {r.last_seen_at:%Y-%m-%d %H:%M}): {r.reason}")
        print(f"{len(rows)} open exception(s)")
    return 0


def _cmd_webhooks(args: argparse.Namespace) -> int:
    from mirakl_pipelines.webhooks.serve import serve

    return serve(load_settings(args.config), host=args.host, port=args.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mirakl-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="sandbox marketplaces + shop + scenario + Dagster UI with schedules running")
    demo.add_argument("--port", type=int, default=3000, help="Dagster UI port (default 3000)")
    demo.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS",
                      help="run unattended for SECONDS, then stop and print what every flow did and how its checks ended")
    sandbox = sub.add_parser("sandbox", help="only the sandbox marketplaces, shop and scenario")
    for p in (demo, sandbox):
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--orders-per-minute", type=float, default=4.0, help="new orders per marketplace per minute")
        p.add_argument("--workdir", default=".demo", help="where the demo keeps its config, ledger, warehouse, DAGSTER_HOME")
    demo.set_defaults(func=_cmd_demo)
    sandbox.set_defaults(func=_cmd_sandbox)

    check = sub.add_parser("check-config", help="validate the marketplace configuration file")
    check.add_argument("--config", default=None)
    check.set_defaults(func=_cmd_check_config)

    exc = sub.add_parser("exceptions", help="list the open exceptions an operator must act on")
    exc.add_argument("--config", default=None)
    exc.add_argument("--marketplace", default=None)
    exc.add_argument("--json", action="store_true")
    exc.set_defaults(func=_cmd_exceptions)

    hooks = sub.add_parser("webhooks", help="the Shopify webhook receiver (secrets from the store's webhook_secret_env)")
    hooks.add_argument("--host", default="127.0.0.1")
    hooks.add_argument("--port", type=int, default=8090)
    hooks.add_argument("--config", default=None)
    hooks.set_defaults(func=_cmd_webhooks)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:  # a bad configuration is the operator's to fix: say what, no traceback
        print(e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
