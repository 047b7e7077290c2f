"""What every installer command shares: finding the running controller's API, calling it, and
printing the answer (a table for people, JSON for scripts), with one exit code per kind of failure.

The API is found from --url/--api-key, else $EVEDGE_URL/$EVEDGE_API_KEY, else --config (its
[api] listen and first api key; `0.0.0.0` becomes 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

import httpx

from controller.config import ConfigError, default_config_path, load_config, parse_listen

EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_API) -> None:
        super().__init__(message)
        self.code = code


# -- finding and calling the API --------------------------------------------------------------


def _endpoint(args: argparse.Namespace) -> tuple[str, str]:
    url = args.url or os.environ.get("EVEDGE_URL")
    key = args.api_key or os.environ.get("EVEDGE_API_KEY")
    config_path = args.config or (None if url else default_config_path())
    if config_path and (not url or not key):
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            raise CliError(f"{exc} (or give --url and --api-key)", EXIT_USAGE) from None
        if not url:
            host, port = parse_listen(config.api.listen)
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
            url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if not key and config.api.api_keys:
            key = config.api.api_keys[0]
    if not url:
        raise CliError("no API address: give --url, set EVEDGE_URL or --config", EXIT_USAGE)
    return url.rstrip("/"), key or ""


class Api:
    def __init__(self, args: argparse.Namespace) -> None:
        url, key = _endpoint(args)
        self.client = httpx.Client(base_url=url, headers={"X-API-Key": key} if key else {},
                                   timeout=args.timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the controller at {self.client.base_url}: {exc}", EXIT_UNREACHABLE) from None
        if response.status_code >= 400:
            self._refused(method, path, response)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    def download(self, path: str, params: dict[str, Any], out: IO[bytes]) -> int:
        """Stream a GET's body into `out` (an export need not fit in memory); returns its bytes."""
        written = 0
        try:
            with self.client.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    self._refused("GET", path, response)
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the controller at {self.client.base_url}: {exc}", EXIT_UNREACHABLE) from None
        return written

    @staticmethod
    def _refused(method: str, path: str, response: httpx.Response) -> None:
        try:
            body = response.json()
            message = f"{body.get('error', 'Error')}: {body.get('message', '')}"
        except (ValueError, AttributeError):
            message = response.text.strip()[:200]
        raise CliError(f"{method} {path} failed ({response.status_code}) {message}")


# -- output ---------------------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(rows: Iterable[dict], columns: list[tuple[str, str]]) -> str:
    """`columns` is [(header, key)]; returns an aligned plain-text table."""
    cells = [[h for h, _ in columns]] + [[cell(row.get(k)) for _, k in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def show(args: argparse.Namespace, data: Any, human: str) -> None:
    """JSON with --json, else the text for people."""
    print(json.dumps(data, indent=2) if args.json else human)


# -- argparse wiring --------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace, Any], None]


def command(handler: Handler, needs_api: bool = True) -> Callable[[argparse.Namespace], int]:
    """An argparse `func`: runs `handler(args, api)`, a CliError becomes its message and exit code."""
    def run(args: argparse.Namespace) -> int:
        try:
            handler(args, Api(args) if needs_api else None)
        except CliError as exc:
            print(f"evedge: {exc}", file=sys.stderr)
            return exc.code
        return 0

    return run


def options(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes, as a parent parser. They work before and after the action
    (`tags --json list`, `tags list --json`): the action's copies (`suppress`) default to SUPPRESS
    so they never overwrite the group's values."""
    parser = argparse.ArgumentParser(add_help=False)

    def d(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--config", "-c", default=d(None), help=f"the site's TOML file (default "
                        f"{default_config_path()} unless --url or $EVEDGE_URL is given; $EVEDGE_CONFIG sets it)")
    parser.add_argument("--url", default=d(None), help="the API, e.g. http://127.0.0.1:8080 (env EVEDGE_URL)")
    parser.add_argument("--api-key", default=d(None), help="an X-API-Key (env EVEDGE_API_KEY)")
    parser.add_argument("--json", action="store_true", default=d(False), help="print JSON for scripts")
    parser.add_argument("--timeout", type=float, default=d(40.0), help="seconds to wait for the API (default 40)")
    return parser
