"""Polling one meter: its register map planned into block reads, decoded into a MeterState."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import trio

from ..config import MeterConfig
from ..modbus import ModbusBus, ModbusError
from ..registers import Block, plan_blocks
from .models import load_model
from .register_map import PHASE_READINGS, PHASES, SCALAR_READINGS
from .state import MeterState

log = logging.getLogger(__name__)

OnReading = Callable[[MeterState], Awaitable[None]]


class Meter:
    """One configured meter on a bus. `state` is the latest snapshot."""

    def __init__(self, config: MeterConfig, bus: ModbusBus) -> None:
        self.config = config
        self.bus = bus
        register_map = config.map if config.map is not None else load_model(config.model)
        self.blocks: list[Block] = plan_blocks(
            register_map.fields(), config.max_registers or register_map.max_registers, register_map.max_gap
        )
        self.state = MeterState(
            id=config.id,
            model=config.model,
            bus=config.bus,
            role=config.role,
            charger=config.charger,
            connector=config.connector,
        )

    async def poll(self) -> MeterState:
        """Read every block once; on any failure the meter is offline and keeps its old readings."""
        values: dict[str, float | None] = {}
        try:
            for block in self.blocks:
                registers = await self.bus.read_registers(
                    self.config.device_id, block.function_code, block.address, block.count
                )
                values.update(block.values(registers))
        except ModbusError as exc:
            if self.state.online:
                log.warning("meter %s offline: %s", self.config.id, exc)
            self.state = dataclasses.replace(self.state, online=False, last_error=str(exc))
            return self.state
        if not self.state.online:
            log.info("meter %s online", self.config.id)
        readings: dict[str, object] = {name: _round(values.get(name)) for name in SCALAR_READINGS}
        for reading in PHASE_READINGS:
            phases = [values[key] for key in (f"{reading}_{p}" for p in PHASES) if key in values]
            readings[reading] = tuple(_round(v) for v in phases) if phases else None
        self.state = dataclasses.replace(
            self.state, online=True, last_error=None, updated_at=datetime.now(timezone.utc), **readings  # type: ignore[arg-type]
        )
        return self.state

    async def run(self, on_reading: OnReading | None = None) -> None:
        """Poll every `poll_s` forever. `on_reading` gets each new snapshot (every good poll, and
        a failed one when it changes online/last_error); its exceptions are logged, not raised."""
        next_poll = trio.current_time()
        while True:
            before = self.state
            state = await self.poll()
            if on_reading is not None and (state.online or (state.online, state.last_error) != (before.online, before.last_error)):
                try:
                    await on_reading(state)
                except Exception:
                    log.exception("on_reading callback failed for meter %s", self.config.id)
            next_poll = max(next_poll + self.config.poll_s, trio.current_time())
            await trio.sleep_until(next_poll)


def _round(value: float | None) -> float | None:
    """Drop float32 noise (1234.5670166 kWh -> 1234567.017 Wh) without losing real resolution."""
    return None if value is None else round(value, 3)
