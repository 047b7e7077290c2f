"""The `evedge` command: run the controller, check a config; installer commands in admin_cli."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import time

import trio

from controller import __version__, admin_cli, logs, systemd
from controller.config import ConfigError, load_config

log = logging.getLogger("evedge")


async def _run(config, config_path: str) -> None:
    from controller import reload
    from controller.site import Site

    site = Site(config)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            await nursery.start(site.run)
            # What exists now (modules, schemas, config) lives as long as the process: keep it
            # out of the cyclic GC's full collections, which would walk all of it (tens of ms,
            # measured in bench/) in the middle of answering chargers.
            gc.collect()
            gc.freeze()
            systemd.notify(f"READY=1\nSTATUS=serving: OCPP port {site.ocpp_port}, API port {site.api_port}")
            nursery.start_soon(systemd.watchdog)
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("received SIGHUP; reloading %s", config_path)
                    systemd.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
                    await reload.reload(site, config_path)
                    systemd.notify("READY=1")
                    continue
                log.info("received %s; shutting down", signal.Signals(signum).name)
                systemd.notify("STOPPING=1")
                await site.shutdown()
                break
            nursery.cancel_scope.cancel()


def _load(path: str):
    from controller.csms.security import ocpp_tls_context

    try:
        config = load_config(path)
        ocpp_tls_context(config)  # a missing or unreadable certificate is a config error too
        return config
    except ConfigError as exc:
        print(f"evedge: invalid config: {exc}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    logs.setup(config.logging.level, config.logging.format, config.logging.frame_log)
    try:
        trio.run(_run, config, args.config)
    except (OSError, ExceptionGroup) as exc:  # a port in use, a data directory we may not write
        problem = exc if isinstance(exc, OSError) else _first_os_error(exc)
        if problem is None:
            raise
        log.critical("cannot run: %s", problem)
        return 1
    log.info("stopped")
    return 0


def _first_os_error(group: BaseExceptionGroup) -> OSError | None:
    for exc in group.exceptions:
        found = exc if isinstance(exc, OSError) else (
            _first_os_error(exc) if isinstance(exc, BaseExceptionGroup) else None)
        if found is not None:
            return found
    return None


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    print(f"{args.config}: ok ({len(config.chargers)} chargers, data in {config.data_dir})")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Print a `password_hash` for [[chargers]]; the password comes from stdin or a prompt, never
    from the command line (which other users of the machine can read in `ps`)."""
    import getpass

    from controller.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("charger password (AuthorizationKey): ")
        if getpass.getpass("again: ") != password:
            print("evedge: the two entries differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not 16 <= len(password) <= 40:
        print(f"evedge: a charger password has 16 to 40 characters, not {len(password)}", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.demo import run_demo  # imports the simulators only when asked

    return trio.run(run_demo, args.pace, args.verbose)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evedge", description="Site-local EV charging controller")
    parser.add_argument("--version", action="version", version=f"evedge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the controller in the foreground")
    run.add_argument("--config", "-c", required=True, help="the site's TOML file")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("config")
    check.set_defaults(func=cmd_check_config)
    demo = sub.add_parser("demo", help="play a scripted day with simulated chargers, meter and card reader")
    demo.add_argument("--pace", type=float, default=1.0, help="seconds between steps (default 1)")
    demo.add_argument("--verbose", action="store_true", help="also show the controller's own log")
    demo.set_defaults(func=cmd_demo)
    hashpw = sub.add_parser("hash-password", help="hash a charger's OCPP password for password_hash (reads stdin)")
    hashpw.set_defaults(func=cmd_hash_password)
    admin_cli.add_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
