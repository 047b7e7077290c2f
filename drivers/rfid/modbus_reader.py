"""A card reader behind Modbus: the UID in registers, plus a register flagging a new card."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio

from ..config import ModbusReaderConfig
from ..modbus import ModbusBus, ModbusError
from ..registers import Field, plan_blocks
from .state import ReaderState


class ModbusCardReader:
    """Polls the flag and the UID in as few reads as the register layout allows."""

    def __init__(self, config: ModbusReaderConfig, bus: ModbusBus) -> None:
        self.config = config
        self.bus = bus
        fc = config.function_code
        fields = [Field("flag", fc, config.flag_address, "uint16")]
        fields += [Field(f"uid{i}", fc, config.uid_address + i, "uint16") for i in range(math.ceil(config.uid_bytes / 2))]
        if config.uid_length_address is not None:
            fields.append(Field("length", fc, config.uid_length_address, "uint16"))
        self.blocks = plan_blocks(fields)

    async def poll(self) -> bytes | None:
        """One poll: the waiting card's UID (and the flag cleared), or None. Raises ModbusError."""
        values: dict[str, float | None] = {}
        for block in self.blocks:
            registers = await self.bus.read_registers(self.config.device_id, block.function_code, block.address, block.count)
            values.update(block.values(registers))
        if not values["flag"]:
            return None
        raw = b"".join(int(values[f"uid{i}"] or 0).to_bytes(2, "big") for i in range(math.ceil(self.config.uid_bytes / 2)))
        length = int(values["length"] or 0) if "length" in values else self.config.uid_bytes
        if self.config.clear_flag:
            await self.bus.write_register(self.config.device_id, self.config.flag_address, 0)
        return raw[: min(length, self.config.uid_bytes)] or None

    async def run(self, state: ReaderState, on_uid: Callable[[bytes], Awaitable[None]]) -> None:
        """Poll forever; `state.connected` follows whether the last poll got an answer."""
        ever_connected = False
        while True:
            try:
                uid = await self.poll()
            except ModbusError as exc:
                state.connected, state.last_error = False, str(exc)
            else:
                if not state.connected and ever_connected:
                    state.reconnects += 1
                state.connected, state.last_error, ever_connected = True, None, True
                if uid:
                    await on_uid(uid)
            await trio.sleep(self.config.poll_s)
