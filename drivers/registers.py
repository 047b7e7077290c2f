"""Modbus register values: data types, word order, and block planning.

Meters store 32- and 64-bit values across several 16-bit registers and do not agree on which
register comes first, so every value carries its data type and word order. Decoding goes through
pymodbus' own converters (one home for the byte shuffling); this module adds the register counts,
the checks, and the grouping of many values into few block reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from pymodbus.client.mixin import ModbusClientMixin

DataType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
WordOrder = Literal["big", "little"]
FunctionCode = Literal[3, 4]

DATA_TYPES: tuple[str, ...] = get_args(DataType)
#: The protocol's limit for one FC3/FC4 read.
MAX_READ_REGISTERS = 125

_PYMODBUS_TYPES = {name: ModbusClientMixin.DATATYPE[name.upper()] for name in DATA_TYPES}


def register_count(data_type: DataType) -> int:
    """How many 16-bit registers one value of `data_type` occupies."""
    return _PYMODBUS_TYPES[data_type].value[1]


def decode(registers: Sequence[int], data_type: DataType, word_order: WordOrder = "big") -> int | float:
    """Decode one value from exactly `register_count(data_type)` registers."""
    if len(registers) != register_count(data_type):
        raise ValueError(f"{data_type} needs {register_count(data_type)} registers, got {len(registers)}")
    value = ModbusClientMixin.convert_from_registers(list(registers), _PYMODBUS_TYPES[data_type], word_order)
    assert isinstance(value, (int, float))
    return value


def encode(value: int | float, data_type: DataType, word_order: WordOrder = "big") -> list[int]:
    """Encode one value as registers (the inverse of `decode`); used by the meter emulator."""
    if data_type.startswith(("int", "uint")):
        value = int(value)
    return ModbusClientMixin.convert_to_registers(value, _PYMODBUS_TYPES[data_type], word_order)


@dataclass(frozen=True, slots=True)
class Field:
    """Where one named value lives and how to turn it into engineering units (raw * scale)."""

    name: str
    function_code: FunctionCode
    address: int
    data_type: DataType
    word_order: WordOrder = "big"
    scale: float = 1.0

    @property
    def count(self) -> int:
        return register_count(self.data_type)

    @property
    def end(self) -> int:
        """One past the last register of this field."""
        return self.address + self.count

    def value_from(self, registers: Sequence[int]) -> float | None:
        """Decode and scale; NaN/inf (Eastron's 'not available') become None."""
        raw = decode(registers, self.data_type, self.word_order)
        if isinstance(raw, float) and not math.isfinite(raw):
            return None
        return raw * self.scale


@dataclass(frozen=True, slots=True)
class Block:
    """One read request covering one or more fields."""

    function_code: FunctionCode
    address: int
    count: int
    fields: tuple[Field, ...]

    def values(self, registers: Sequence[int]) -> dict[str, float | None]:
        """Decode every field of this block from the registers a read returned."""
        if len(registers) < self.count:
            raise ValueError(f"short read: wanted {self.count} registers, got {len(registers)}")
        out: dict[str, float | None] = {}
        for f in self.fields:
            offset = f.address - self.address
            out[f.name] = f.value_from(registers[offset : offset + f.count])
        return out


def plan_blocks(fields: Iterable[Field], max_registers: int = MAX_READ_REGISTERS, max_gap: int = 32) -> list[Block]:
    """Group fields into as few reads as the limits allow.

    Fields with the same function code join the current block while the block stays within
    `max_registers` and the hole before the field is at most `max_gap` registers: reading a few
    unused registers costs less on a 9600 baud line than another request/turnaround.
    """
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MAX_READ_REGISTERS}")
    blocks: list[Block] = []
    ordered = sorted(fields, key=lambda f: (f.function_code, f.address, f.end))
    current: list[Field] = []
    for f in ordered:
        if f.count > max_registers:
            raise ValueError(f"field {f.name} ({f.count} registers) exceeds max_registers={max_registers}")
        if current:
            start, end = current[0].address, max(c.end for c in current)
            same_fc = current[0].function_code == f.function_code
            if same_fc and f.address - end <= max_gap and max(end, f.end) - start <= max_registers:
                current.append(f)
                continue
            blocks.append(_block(current))
        current = [f]
    if current:
        blocks.append(_block(current))
    return blocks


def _block(fields: Sequence[Field]) -> Block:
    start = fields[0].address
    return Block(fields[0].function_code, start, max(f.end for f in fields) - start, tuple(fields))

