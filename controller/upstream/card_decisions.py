"""The upstream's say on cards: `[upstream] authorize_url`.

When a card is presented (an Authorize, a tap on a reader, a StartTransaction with a tag the site
does not know), the upstream is asked `{"type": "authorize", "chargebox", "connector", "id"}` and
answers `{"accepted": bool, "expires_at"?: ISO 8601}`. Only an answer within `authorize_timeout_s`
counts: the charger never waits longer, and without one the site decides from its local list and
the upstream's earlier answers (controller/authorization.py keeps them, with their expiry).
"""

from __future__ import annotations

import logging

import httpx
import orjson
import trio

from controller.authorization import IdTag
from controller.http_clients import tls
from controller.live_config import LiveConfig
from controller.timefmt import normalize
from controller.upstream.delivery import SIGNATURE_HEADER, sign

log = logging.getLogger("evedge.upstream")

REFUSED = "Blocked"  # the upstream said no: the card is blocked here until it says otherwise


class CardDecisions:
    def __init__(self, config: LiveConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Holds the HTTP client (its connections are reused from one card to the next)."""
        async with httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": "evedge"},
                                     transport=self._transport, verify=tls()) as client:
            self._client = client
            task_status.started()
            await trio.sleep_forever()

    async def ask(self, charger_id: str, connector_id: int, id_tag: str) -> IdTag | None:
        """The upstream's answer on a card, or None (not configured, not in time, not understood)."""
        upstream = self.config.current.upstream
        if upstream.authorize_url is None or self._client is None:
            return None
        body = orjson.dumps({"type": "authorize", "chargebox": charger_id, "connector": connector_id, "id": id_tag})
        headers = {"Content-Type": "application/json", **upstream.headers}
        if upstream.signing_secret:
            headers[SIGNATURE_HEADER] = sign(upstream.signing_secret, body)
        with trio.move_on_after(upstream.authorize_timeout_s):
            try:
                response = await self._client.post(str(upstream.authorize_url), content=body, headers=headers)
                return self._answer(id_tag, response)
            except (httpx.HTTPError, OSError) as exc:
                log.warning("charger=%s id_tag=%s: the authorize webhook failed (%s); deciding locally",
                            charger_id, id_tag, exc)
                return None
        log.warning("charger=%s id_tag=%s: no answer from the authorize webhook within %g s; deciding locally",
                    charger_id, id_tag, upstream.authorize_timeout_s)
        return None

    @staticmethod
    def _answer(id_tag: str, response: httpx.Response) -> IdTag | None:
        try:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            data = orjson.loads(response.content)
            accepted = data["accepted"]
            if not isinstance(accepted, bool):
                raise ValueError("accepted is not a boolean")
            expires = data.get("expires_at")
            expires = normalize(expires) if isinstance(expires, str) else None
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            log.warning("id_tag=%s: the authorize webhook's answer is not usable (%s); deciding locally", id_tag, exc)
            return None
        return IdTag(id_tag, "Accepted" if accepted else REFUSED, expires)
