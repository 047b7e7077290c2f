"""The `evedge` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import trio

from controller import logs
from controller.config import ConfigError, load_config

log = logging.getLogger("evedge")


async def _run(config) -> None:
    from controller.site import Site

    site = Site(config)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await nursery.start(site.run)
            async for signum in signals:
                log.info("received %s; shutting down", signal.Signals(signum).name)
                await site.shutdown()
                break


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"evedge: invalid config: {exc}", file=sys.stderr)
        return 2
    logs.setup(config.logging.level)
    trio.run(_run, config)
    log.info("stopped")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"evedge: invalid config: {exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: ok ({len(config.chargers)} chargers, data in {config.data_dir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evedge", description="Site-local EV charging controller")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the controller in the foreground")
    run.add_argument("--config", "-c", required=True, help="the site's TOML file")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("config")
    check.set_defaults(func=cmd_check_config)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
