"""`mirakl-pipelines`: the demo, the sandbox alone, and what operators need day to day."""

import argparse
import json
import os
import sys
from pathlib import Path

from mirakl_pipelines import running_demo
from mirakl_pipelines.config import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH, ConfigError, Settings, load_settings


def _cmd_demo(args: argparse.Namespace) -> int:
    from mirakl_pipelines.demo import run_demo

    return run_demo(port=args.port, seed=args.seed, orders_per_minute=args.orders_per_minute, workdir=args.workdir,
                    duration=args.duration)


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from mirakl_pipelines.demo import run_sandbox_only

    return run_sandbox_only(seed=args.seed, orders_per_minute=args.orders_per_minute, workdir=args.workdir)


def config_path(explicit: str | None) -> tuple[Path, str]:
    """The configuration file a command reads, and why: `--config`, then $MIRAKL_PIPELINES_CONFIG, then the
    demo running in the project's `.demo/` (its sandbox is what the user is looking at), then the default file."""
    if explicit:
        return Path(explicit), "--config"
    if os.environ.get(CONFIG_ENV_VAR):
        return Path(os.environ[CONFIG_ENV_VAR]), f"${CONFIG_ENV_VAR}"
    demo = running_demo.find()
    if demo is not None:
        return demo.config, f"the running demo's, pid {demo.pid}"
    return DEFAULT_CONFIG_PATH, "default"


def _settings(args: argparse.Namespace) -> Settings:
    """Load the command's configuration, saying on stderr which file it is (stdout stays the command's output)."""
    path, source = config_path(args.config)
    print(f"configuration: {path} ({source})", file=sys.stderr)
    return load_settings(path)


def _cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(f"ok: {len(settings.marketplaces)} marketplace(s): {', '.join(m.code for m in settings.marketplaces)}")
    return 0


def _cmd_exceptions(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rows = _open_exceptions(settings.ledger_url(), args.marketplace)
    if rows is None:
        return 1
    if args.json:
        print(json.dumps([{"id": r.id, "marketplace": r.marketplace, "kind": r.kind, "record": r.record_id,
                           "reason": r.reason, "occurrences": r.occurrences,
                           "last_seen_at": r.last_seen_at.isoformat()} for r in rows], indent=2))
    else:
        for r in rows:
            print(f"#{r.id} {r.marketplace} {r.kind} {r.record_id} (x{r.occurrences}, last {r.last_seen_at:%Y-%m-%d %H:%M}): {r.reason}")
        print(f"{len(rows)} open exception(s)")
    return 0


def _open_exceptions(url: str, marketplace: str | None) -> list | None:
    """The ledger's open exceptions, read without creating or migrating anything: a missing SQLite file is
    reported (an empty list), not created. None when the database holds no ledger."""
    import sqlalchemy as sa

    from mirakl_pipelines.ledger import Ledger
    from mirakl_pipelines.ledger.engine import create_ledger_engine

    database = sa.engine.make_url(url)
    missing = Path(database.database or "")
    if database.get_backend_name() == "sqlite" and not missing.exists():
        print(f"no ledger at {missing}: nothing has been synced with this configuration yet", file=sys.stderr)
        for workdir in running_demo.default_workdirs():  # a stopped demo's ledger is still there to read
            if (workdir / "marketplaces.yaml").exists() and workdir not in missing.parents:
                print(f"(the demo's configuration is {workdir / 'marketplaces.yaml'}: pass it with --config)", file=sys.stderr)
                break
        return []
    ledger = Ledger(create_ledger_engine(url))  # not Ledger.connect: that creates the schema
    try:
        return ledger.open_exceptions(marketplace)
    except sa.exc.DBAPIError as e:  # not a ledger (no exception queue), or a database that cannot be reached
        print(f"cannot read the ledger at {database.render_as_string(hide_password=True)}: {e.orig}", file=sys.stderr)
        return None
    finally:
        ledger.close()


def _cmd_webhooks(args: argparse.Namespace) -> int:
    from mirakl_pipelines.webhooks.serve import serve

    return serve(_settings(args), host=args.host, port=args.port)


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
        p.add_argument("--workdir", default=running_demo.DEFAULT_WORKDIR,
                       help="where the demo keeps its config, ledger, warehouse, DAGSTER_HOME (default .demo)")
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
