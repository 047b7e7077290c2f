"""The `evedge` command: run the controller, check a config; installer commands in admin_cli."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path

import trio

from controller import __version__, admin_cli, descriptors, init_site, logs, preflight, systemd
from controller.config import Config, ConfigError, default_config_path, load_config, lockouts
from controller.store.data_dir import BooksMissing, DataDirRefused
from controller.store.integrity import DamagedDatabase

log = logging.getLogger("evedge")
GC_YOUNG_THRESHOLD = 20_000  # allocations between two collections of the youngest generation
EXIT_NEEDS_OPERATOR = 3
"""`evedge run` exit status when the books are missing or damaged: a restart cannot help, so the
systemd unit does not restart on it (RestartPreventExitStatus)."""


async def _run(config, config_path: str, new_books: bool) -> None:
    from controller import reload
    from controller.site import Site

    descriptors.raise_limit()  # chargers, API clients and the database all need descriptors
    site = Site(config, new_books=new_books)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            await nursery.start(site.run)
            # What exists now (modules, schemas, config) lives as long as the process: keep it
            # out of the cyclic GC's full collections, which would walk all of it (tens of ms,
            # measured in bench/) in the middle of answering chargers.
            gc.collect()
            gc.freeze()
            # Each message allocates a few dozen containers that die young by reference count;
            # the default threshold (700) still ran a young collection every ~20 messages.
            gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
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


def _load(path: str) -> Config | None:
    from controller.csms.security import check_public_tls, ocpp_tls_context

    try:
        config = load_config(path)
        ocpp_tls_context(config)  # a missing or unreadable certificate is a config error too
        check_public_tls(config)
        return config
    except ConfigError as exc:
        print(f"evedge: invalid config: {exc}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    logs.setup(config.logging.level, config.logging.format, config.logging.frame_log)
    for problem in lockouts(config, args.config):
        log.warning("%s (check-config and a reload refuse this file)", problem)
    findings = preflight.check(config)
    for finding in findings:
        log.log(logging.CRITICAL if finding.fatal else logging.WARNING, "config: %s", finding.line(config))
    if any(f.fatal for f in findings):
        return 2
    try:
        trio.run(_run, config, args.config, args.new_books)
    except DataDirRefused as exc:  # another controller holds the directory, or the books are gone or damaged
        log.critical("cannot run: %s", exc)
        return EXIT_NEEDS_OPERATOR if isinstance(exc, (BooksMissing, DamagedDatabase)) else 1
    except (OSError, ConfigError, BaseExceptionGroup) as exc:  # a port in use, a data directory we may not write
        from controller.site import first_error

        problem = first_error(exc, (ConfigError, OSError))
        if problem is None:
            raise
        log.critical("cannot run: %s", problem)
        return 1
    log.info("stopped")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    if problems := lockouts(config, args.config):
        print("evedge: config refused:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    from controller.load_management.config import warnings

    for warning in warnings(config):  # allowed, but the installer should know
        print(f"evedge: warning: {args.config}: {warning}", file=sys.stderr)
    findings = preflight.check(config)
    for finding in findings:
        print(f"evedge: {'invalid config' if finding.fatal else 'WARNING'}: {finding.line(config)}", file=sys.stderr)
    if any(f.fatal for f in findings):
        return 2
    print(f"{args.config}: ok ({len(config.chargers)} chargers, data in {config.data_dir})")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    try:
        init_site.write(path, os.environ, force=args.force)
    except FileExistsError:
        print(f"evedge: {path} exists; not overwritten (--force replaces it, and its API key)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"evedge: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    config = load_config(path)
    print(f"wrote {path}: a random operator key in [api] api_keys, data in {config.data_dir}\n"
          f"next: add a [[chargers]] table per charger, then: evedge check-config {path}")
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


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the books while the controller runs (controller/store/backup.py)."""
    from controller.store.backup import BackupError, backup

    if args.keep is not None and args.keep < 1:
        print("evedge: --keep: at least 1", file=sys.stderr)
        return 2
    config = _load(args.config)
    if config is None:
        return 2
    try:
        path, info, removed = backup(config.data_dir, Path(args.file), args.keep)
    except BackupError as exc:
        print(f"evedge: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {info.describe()} to {path}")
    for old in removed:
        print(f"removed old backup {old}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Put a backup back as the books; only while the controller is stopped."""
    from controller.store.backup import BackupError, restore

    config = _load(args.config)
    if config is None:
        return 2
    try:
        info, kept = restore(config.data_dir, Path(args.file), config.site.name)
    except (BackupError, DataDirRefused) as exc:
        print(f"evedge: restore refused: {exc}", file=sys.stderr)
        return 1
    print(f"restored {info.describe()} into {config.data_dir}")
    if kept is not None:
        print(f"the database it replaced is kept as {kept}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.demo import run_demo  # imports the simulators only when asked

    return trio.run(run_demo, args.pace, args.verbose)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evedge", description="Site-local EV charging controller")
    parser.add_argument("--version", action="version", version=f"evedge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = f"the site's TOML file (default {default_config_path()}; $EVEDGE_CONFIG sets the default)"
    run = sub.add_parser("run", help="run the controller in the foreground")
    run.add_argument("--config", "-c", default=default_config_path(), help=config_help)
    run.add_argument("--new-books", action="store_true",
                     help="begin new books when the data directory had some and the database is missing or empty"
                          " (otherwise that is refused)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate a config file, and what it asks of this machine")
    check.add_argument("config", nargs="?", default=default_config_path(), help=config_help)
    check.set_defaults(func=cmd_check_config)
    init = sub.add_parser("init", help="write a first site config with a random API key")
    init.add_argument("path", nargs="?", default=default_config_path(), help=config_help)
    init.add_argument("--force", action="store_true", help="replace an existing file (and its API key)")
    init.set_defaults(func=cmd_init)
    back = sub.add_parser("backup", help="copy the books to FILE while the controller runs (consistent, checked)")
    back.add_argument("file", help="the backup file, or a directory for a file named by the time")
    back.add_argument("--config", "-c", default=default_config_path(), help=config_help)
    back.add_argument("--keep", type=int, metavar="N", help="into a directory: keep only the newest N backups")
    back.set_defaults(func=cmd_backup)
    rest = sub.add_parser("restore", help="make a backup the books (stop the controller first)")
    rest.add_argument("file", help="a file written by `evedge backup`")
    rest.add_argument("--config", "-c", default=default_config_path(), help=config_help)
    rest.set_defaults(func=cmd_restore)
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
