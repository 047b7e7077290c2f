"""The config in force, one holder for the whole process.

Parts that read a setting each time they use it (the API's keys, the OCPP timeouts, the policy for
unknown chargers) hold this and read `.current`; a SIGHUP reload (controller/reload.py) swaps the
value once, and every part sees the new settings at its next use.
"""

from __future__ import annotations

from controller.config import Config


class LiveConfig:
    def __init__(self, config: Config) -> None:
        self.current = config

    def replace(self, config: Config) -> None:
        self.current = config
