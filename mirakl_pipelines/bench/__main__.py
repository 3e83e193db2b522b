"""`python -m mirakl_pipelines.bench`: every benchmark at its real size, a table, and BENCHMARKS.md.

    python -m mirakl_pipelines.bench [--only import refresh latency latency_failures memory memory_large shipping webhooks
                                             stock_large stock_latency]
                                     [--output BENCHMARKS.md] [--latency-seconds 420] [--failures-seconds 900] [--shipping-seconds 300]
                                     [--webhook-deliveries 5000] [--stock-skus 100000] [--stock-changed 1000]
                                     [--stock-latency-seconds 400] [--no-write]

Each benchmark works in a temporary directory of its own (ledger, warehouse, Dagster home, logs),
removed at the end unless --keep is given.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mirakl_pipelines.bench.harness import BenchError
from mirakl_pipelines.bench.latency import bench_latency, bench_latency_through_failures
from mirakl_pipelines.bench.memory import bench_memory
from mirakl_pipelines.bench.refresh import bench_refresh
from mirakl_pipelines.bench.report import BenchResult, Figure, machine_info, render_table, write_markdown
from mirakl_pipelines.bench.shipping import bench_shipping
from mirakl_pipelines.bench.stock import bench_stock_large
from mirakl_pipelines.bench.stock_latency import bench_stock_latency
from mirakl_pipelines.bench.throughput import bench_import
from mirakl_pipelines.bench.webhook_throughput import bench_webhooks
from mirakl_pipelines.config import PROJECT_ROOT

BENCHMARKS = ("import", "refresh", "latency", "latency_failures", "memory", "memory_large", "shipping", "webhooks",
              "stock_large", "stock_latency")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mirakl_pipelines.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--keep", action="store_true", help="keep the work directories (logs, ledgers, Dagster homes)")
    parser.add_argument("--import-orders", type=int, default=300)
    parser.add_argument("--day-orders", type=int, default=2000, help="orders already in the day for the refresh benchmark")
    parser.add_argument("--latency-seconds", type=float, default=420.0)
    parser.add_argument("--failures-seconds", type=float, default=900.0, help="length of the latency-through-failures run")
    parser.add_argument("--memory-orders", type=int, default=10_000)
    parser.add_argument("--memory-large-orders", type=int, default=50_000, help="the day size memory must not grow with")
    parser.add_argument("--shipping-seconds", type=float, default=300.0)
    parser.add_argument("--webhook-deliveries", type=int, default=5_000)
    parser.add_argument("--stock-skus", type=int, default=100_000, help="catalogue size of the stock_large benchmark")
    parser.add_argument("--stock-changed", type=int, default=1_000, help="SKUs changed before its delta run")
    parser.add_argument("--stock-latency-seconds", type=float, default=400.0, help="length of the stock latency run")
    args = parser.parse_args(argv)

    runners = {
        "import": lambda d: bench_import(d, orders=args.import_orders),
        "refresh": lambda d: bench_refresh(d, day_orders=args.day_orders),
        "latency": lambda d: bench_latency(d, duration_s=args.latency_seconds),
        "latency_failures": lambda d: bench_latency_through_failures(d, duration_s=args.failures_seconds),
        "memory": lambda d: bench_memory(d, orders=args.memory_orders),
        "memory_large": lambda d: bench_memory(d, orders=args.memory_large_orders),
        "shipping": lambda d: bench_shipping(d, duration_s=args.shipping_seconds),
        "webhooks": lambda d: bench_webhooks(d, deliveries=args.webhook_deliveries),
        "stock_large": lambda d: bench_stock_large(d, skus=args.stock_skus, changed=args.stock_changed),
        "stock_latency": lambda d: bench_stock_latency(d, duration_s=args.stock_latency_seconds),
    }
    root = Path(tempfile.mkdtemp(prefix="mirakl-bench-"))
    results = []
    failed = False
    try:
        for name in BENCHMARKS:
            if name not in args.only:
                continue
            print(f"running {name} …", flush=True)
            began = time.monotonic()
            try:
                result = runners[name](root / name)
            except BenchError as error:  # keep the other benchmarks' figures; this one reads n/a, FAIL
                failed = True
                result = BenchResult(f"{name}: could not be measured", [
                    Figure(name, "benchmark did not complete", float("nan"), "", "completes", False)], [str(error)[:2000]])
            result.seconds = time.monotonic() - began
            print(f"  done in {result.seconds:.0f} s", flush=True)
            results.append(result)
    finally:
        if args.keep:
            print(f"work directories kept under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(render_table(results))
    if not args.no_write:
        command = "make bench" if not argv and len(sys.argv) <= 1 else \
            "python -m mirakl_pipelines.bench " + " ".join(argv if argv is not None else sys.argv[1:])
        write_markdown(args.output, results, machine_info(), command=command)
        print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
