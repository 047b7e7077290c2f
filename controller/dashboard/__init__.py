"""The installer's dashboard: the whole site, live, in a browser on the LAN, at `/` of the API port.

Server-rendered pages (Jinja2 templates and a little plain JavaScript and CSS, all inside this
package: nothing is fetched from the internet) over the same domain parts the REST API uses
(controller/api/services.py), so a page can do nothing an API key of the same role could not.

- guard.py: signing in with an API key (a session cookie), CSRF and cross-site checks, roles.
- pages.py: the pages (GET); actions.py: what the buttons do (POST, operator sessions only).
- live.py: the Server-Sent Events stream that keeps an open page up to date; watch.py: the
  figures that move without an event of their own (circuits, the outbox), looked at once a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from quart import Blueprint
from quart_trio import QuartTrio

from controller.api.services import Services
from controller.changes import Changes
from controller.dashboard.frames import RecentFrames, recent_frames
from controller.dashboard.sessions import Sessions
from controller.store import Store

PREFIX = "/dashboard"
HOME = "/"


@dataclass
class Dashboard:
    """What the dashboard works with (controller/site.py builds it)."""

    services: Services
    changes: Changes
    store: Store
    """For its own rows (sessions) and reads the API has no call for: a transaction's meter values."""
    started: float = field(default_factory=time.monotonic)  # for the uptime: no clock step moves it
    sessions: Sessions = field(init=False)
    frames: RecentFrames = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.store)
        self.frames = recent_frames()

    @staticmethod
    def owns(path: str) -> bool:
        """The dashboard's paths: it checks its own sessions there, not the API's X-API-Key."""
        return path == HOME or path.startswith(PREFIX + "/")

    def register(self, app: QuartTrio) -> None:
        from controller.dashboard import actions, guard, pages

        blueprint = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                              static_url_path=f"{PREFIX}/static")
        guard.register(blueprint, self)
        pages.register(blueprint, self)
        actions.register(blueprint, self)
        app.register_blueprint(blueprint)
