"""Register decoding and block planning, including property tests over every data type."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.meters.models import MODELS, load_model
from drivers.registers import DATA_TYPES, MAX_READ_REGISTERS, Field, decode, encode, plan_blocks, register_count

_INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def _values(data_type: str) -> st.SearchStrategy:
    if data_type in _INT_RANGES:
        lo, hi = _INT_RANGES[data_type]
        return st.integers(lo, hi)
    return st.floats(width=32 if data_type == "float32" else 64, allow_nan=True)


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[str, str, int | float]:
    data_type = draw(st.sampled_from(DATA_TYPES))
    return data_type, draw(st.sampled_from(["big", "little"])), draw(_values(data_type))


@given(typed_values())
def test_encode_decode_round_trip(case: tuple[str, str, int | float]) -> None:
    data_type, word_order, value = case
    registers = encode(value, data_type, word_order)  # type: ignore[arg-type]
    assert len(registers) == register_count(data_type)  # type: ignore[arg-type]
    assert all(0 <= r <= 0xFFFF for r in registers)
    decoded = decode(registers, data_type, word_order)  # type: ignore[arg-type]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(decoded)
    else:
        assert decoded == value


@given(st.sampled_from([t for t in DATA_TYPES if register_count(t) > 1]), _values("uint64"))
def test_little_word_order_is_reversed_registers(data_type: str, seed: int) -> None:
    """'little' means the same registers, least significant word first (Carlo Gavazzi)."""
    count = register_count(data_type)  # type: ignore[arg-type]
    registers = [(seed >> (16 * i)) & 0xFFFF for i in range(count)]
    big = decode(registers, data_type, "big")  # type: ignore[arg-type]
    little = decode(registers[::-1], data_type, "little")  # type: ignore[arg-type]
    assert big == little or (math.isnan(big) and math.isnan(little))


def test_known_vectors() -> None:
    # Eastron: 230.0 V as IEEE754 float32, high word first.
    assert decode([0x4366, 0x0000], "float32", "big") == 230.0
    # Carlo Gavazzi: 2301 (0.1 V) as INT32, low word first.
    assert decode([2301, 0], "int32", "little") == 2301
    assert decode([0xFFFF, 0xFFFF], "int32", "little") == -1
    # ABB: 123456789 (0.01 kWh) as UINT64, high word first.
    assert decode(list(struct.unpack(">4H", (123456789).to_bytes(8, "big"))), "uint64") == 123456789
    with pytest.raises(ValueError):
        decode([1], "int32")


def test_nan_reads_as_missing() -> None:
    """Eastron reports unavailable values as NaN: that is 'no value', not a number."""
    field = Field("power_w", 4, 0, "float32")
    assert field.value_from(encode(float("nan"), "float32")) is None
    assert field.value_from(encode(12.5, "float32")) == 12.5


fields_strategy = st.lists(
    st.builds(
        Field,
        name=st.text("abcdef", min_size=1, max_size=4),
        function_code=st.sampled_from([3, 4]),
        address=st.integers(0, 600),
        data_type=st.sampled_from(DATA_TYPES),
    ),
    max_size=40,
)


@given(fields_strategy, st.integers(4, MAX_READ_REGISTERS), st.integers(0, 40))
def test_plan_covers_every_field_within_limits(fields: list[Field], max_registers: int, max_gap: int) -> None:
    blocks = plan_blocks(fields, max_registers=max_registers, max_gap=max_gap)
    assert sorted(id(f) for b in blocks for f in b.fields) == sorted(id(f) for f in fields)
    for block in blocks:
        assert 1 <= block.count <= max_registers
        for f in block.fields:
            assert f.function_code == block.function_code
            assert block.address <= f.address and f.end <= block.address + block.count


@given(fields_strategy)
def test_plan_decodes_what_was_encoded(fields: list[Field]) -> None:
    """Place distinct values at each field's registers; each block decodes each field back."""
    memory: dict[tuple[int, int], int] = {}
    expected: dict[str, int | float] = {}
    for f in {(f.function_code, f.address): f for f in fields}.values():  # one field per start
        if any((f.function_code, a) in memory for a in range(f.address, f.end)):
            continue
        value = f.address % 100 + 1
        for i, reg in enumerate(encode(value, f.data_type, f.word_order)):
            memory[(f.function_code, f.address + i)] = reg
        expected[f"{f.function_code}:{f.address}:{f.data_type}"] = value
    placed = [f for f in fields if f"{f.function_code}:{f.address}:{f.data_type}" in expected]
    placed = [Field(f"{f.function_code}:{f.address}:{f.data_type}", f.function_code, f.address, f.data_type) for f in placed]
    for block in plan_blocks(placed):
        registers = [memory.get((block.function_code, block.address + i), 0) for i in range(block.count)]
        for name, value in block.values(registers).items():
            assert value == expected[name]


@pytest.mark.parametrize("model", MODELS)
def test_builtin_maps_plan_within_device_limits(model: str) -> None:
    register_map = load_model(model)
    blocks = plan_blocks(register_map.fields(), register_map.max_registers, register_map.max_gap)
    assert all(b.count <= register_map.max_registers for b in blocks)
    assert {f.name for b in blocks for f in b.fields} == set(register_map.registers)


def test_sdm630_reads_in_two_requests_and_keeps_import_apart_from_total() -> None:
    register_map = load_model("sdm630")
    assert register_map.registers["energy_import_wh"].address == 0x0048  # not 0x0156 (import + export)
    blocks = plan_blocks(register_map.fields(), register_map.max_registers, register_map.max_gap)
    assert [(b.address, b.count) for b in blocks] == [(0x0000, 18), (0x0034, 24)]


def test_em24_respects_its_eleven_word_limit() -> None:
    register_map = load_model("em24")
    assert register_map.max_registers == 11
    blocks = plan_blocks(register_map.fields(), register_map.max_registers, register_map.max_gap)
    assert max(b.count for b in blocks) <= 11
