"""`python -m bench [tick|sends|webhook|assignment|search|reply|understanding|customer_list|segments ...] [--quick] [--pg] [--customers N] [--sellers M]`:
run the named benchmarks (all by default). Each prints one JSON line on stdout; progress goes to stderr."""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

BENCHMARKS = ("tick", "sends", "webhook", "assignment", "search", "reply", "understanding", "churn_eval",
              "customer_list", "segments")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} "
                        "(default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--pg", action="store_true",
                        help="webhook, sends, reply: PostgreSQL (database `bench`) instead of the embedded SQLite")
    parser.add_argument("--customers", type=int, metavar="N", help="assignment, customer_list: number of customers")
    parser.add_argument("--sellers", type=int, metavar="M", help="assignment: number of sellers")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    options = {"quick": args.quick, "pg": args.pg, "customers": args.customers, "sellers": args.sellers}
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        # Each benchmark takes only the options that mean something to it.
        accepted = inspect.signature(module.run).parameters
        module.run(**{key: value for key, value in options.items() if key in accepted and value is not None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
