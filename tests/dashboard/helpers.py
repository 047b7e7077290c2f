"""A test site for the dashboard (an operator key and a read-only key) and a signed-in HTTP client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from controller.config import Config, load_config
from tests.support import API_KEY, api_base, config_text

READ_ONLY_KEY = "read-only-key"
CSRF = re.compile(r'<meta name="csrf" content="([^"]+)">')


def make_config(tmp_path: Path, extra: str = "", **options: Any) -> Config:
    """tests/support.py's site plus a read-only key."""
    text = config_text(tmp_path / "data", extra=extra, **options).replace(
        f'api_keys = ["{API_KEY}"]', f'api_keys = ["{API_KEY}"]\nread_only_api_keys = ["{READ_ONLY_KEY}"]')
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


class Signed:
    """An httpx client holding a dashboard session, and the session's CSRF token."""

    def __init__(self, client: httpx.AsyncClient, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return await self.client.post(path, headers=headers, **kwargs)


@asynccontextmanager
async def signed_in(site, key: str = API_KEY) -> AsyncIterator[Signed]:
    async with httpx.AsyncClient(base_url=api_base(site), timeout=30) as client:
        response = await client.post("/dashboard/sign-in", data={"key": key})
        assert response.status_code == 303, response.text
        page = await client.get("/")
        assert page.status_code == 200, page.text
        yield Signed(client, CSRF.search(page.text).group(1))
