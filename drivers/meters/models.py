"""The built-in meter models: one TOML register map per model in `maps/`, loaded on demand."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources

from .register_map import RegisterMap

#: Models documented by the manufacturer as sharing another model's register map.
ALIASES = {"abb-b24": "abb-b23"}


def _map_names() -> list[str]:
    files = resources.files(__package__).joinpath("maps").iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))


#: Every model name accepted in `[[meters]] model = ...` (besides "custom").
MODELS: tuple[str, ...] = tuple(sorted([*_map_names(), *ALIASES]))


@functools.cache
def load_model(name: str) -> RegisterMap:
    """The register map of a built-in model; KeyError for an unknown name."""
    if name not in MODELS:
        raise KeyError(f"unknown meter model {name!r} (known: {', '.join(MODELS)})")
    text = resources.files(__package__).joinpath("maps").joinpath(f"{ALIASES.get(name, name)}.toml").read_text()
    return RegisterMap.model_validate(tomllib.loads(text))
