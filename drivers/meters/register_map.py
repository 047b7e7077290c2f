"""The register map schema shared by the built-in meter models and `model = "custom"` meters.

A map is data: the built-in ones are TOML files in `maps/`, a custom one is the same table inside
the site config, and both are validated by these models. `defaults` saves repeating the function
code, type and word order on every register of a meter that uses one convention throughout.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..registers import MAX_READ_REGISTERS, DataType, Field as RegisterField, FunctionCode, WordOrder

PHASES = ("l1", "l2", "l3")
PHASE_READINGS = ("voltage_v", "current_a", "phase_power_w")
SCALAR_READINGS = ("energy_import_wh", "energy_export_wh", "power_w")
#: Every reading a map may define; the name carries the unit the scaled value must be in.
READINGS: tuple[str, ...] = SCALAR_READINGS + tuple(f"{r}_{p}" for r in PHASE_READINGS for p in PHASES)
ReadingName = Literal[READINGS]  # type: ignore[valid-type]


class RegisterSpec(BaseModel):
    """Where one reading lives: value in the reading's unit = raw register value * scale."""

    model_config = ConfigDict(extra="forbid", strict=True)

    function_code: FunctionCode = Field(3, description="3 = holding registers, 4 = input registers")
    address: int = Field(ge=0, le=0xFFFF, description="register address as on the wire (0-based)")
    type: DataType = Field("float32", description="how the registers encode the value")
    word_order: WordOrder = Field("big", description="'big': high word first; 'little': low word first")
    scale: float = Field(1.0, description="multiplier to the reading's unit, e.g. 1000 for kWh -> Wh")

    def field(self, name: str) -> RegisterField:
        return RegisterField(name, self.function_code, self.address, self.type, self.word_order, self.scale)


class RegisterMap(BaseModel):
    """One meter model's registers, plus how large and sparse its block reads may be."""

    model_config = ConfigDict(extra="forbid", strict=True)

    description: str = Field("", description="model and source of the register table")
    max_registers: int = Field(
        MAX_READ_REGISTERS, ge=1, le=MAX_READ_REGISTERS, description="largest read the device accepts"
    )
    max_gap: int = Field(32, ge=0, description="unused registers worth reading to save a request")
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="RegisterSpec keys applied to every register that omits them"
    )
    registers: dict[ReadingName, RegisterSpec] = Field(description="reading name -> register")

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("defaults"), dict) and isinstance(data.get("registers"), dict):
            data = dict(data)
            data["registers"] = {
                k: ({**data["defaults"], **v} if isinstance(v, dict) else v) for k, v in data["registers"].items()
            }
        return data

    @model_validator(mode="after")
    def _check(self) -> RegisterMap:
        unknown = set(self.defaults) - set(RegisterSpec.model_fields)
        if unknown:
            raise ValueError(f"defaults: unknown keys {sorted(unknown)}")
        if not self.registers:
            raise ValueError("registers: at least one reading is required")
        for reading in PHASE_READINGS:
            present = [f"{reading}_{p}" in self.registers for p in PHASES]
            if present not in ([False] * 3, [True, False, False], [True] * 3):
                raise ValueError(f"registers: {reading} needs l1 only (single phase) or l1, l2 and l3")
        for name, spec in self.registers.items():
            if spec.field(name).count > self.max_registers:
                raise ValueError(f"registers.{name}: wider than max_registers")
        return self

    def fields(self) -> list[RegisterField]:
        return [spec.field(name) for name, spec in self.registers.items()]
