"""Registries behave alike (datasets, energy sources, devices, search strategies): a duplicate
name is refused the same way, an unknown name gives the same kind of one-line error, the config's
``Literal`` choices are the registered names, and every registered entry is usable."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from harmonic_nas.config import DeviceConfig, SearchConfig
from harmonic_nas.data import registry as data_registry
from harmonic_nas.errors import ConfigError, DataError, LUTError
from harmonic_nas.hardware import energy, lut_source
from harmonic_nas.search import strategies
from harmonic_nas.utils.registry import Registry

REGISTRIES: dict[str, tuple[Registry[Any], type[Exception]]] = {
    "dataset": (data_registry._REGISTRY, DataError),
    "energy source": (energy._REGISTRY, ConfigError),
    "device": (lut_source._DEVICES, LUTError),
    "search strategy": (strategies.STRATEGY_REGISTRY, ConfigError),
}


def test_registry_refuses_duplicates_and_names_the_choices() -> None:
    r: Registry[int] = Registry("colour", KeyError, hint=" (see `colours`)", extra_names=("any",))
    r.register("red", 1)
    r.register("blue", 2)
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        r.register("red", 3)
    assert r.get("red") == 1 and r["blue"] == 2 and "red" in r and len(r) == 2
    assert r.register("red", 3, replace=True) == 3
    with pytest.raises(KeyError, match=r"unknown colour 'green'; choose one of any, red, blue \("):
        r.get("green")
    assert r.find("green") is None and r.get("green", None) is None
    with pytest.raises(ValueError, match="non-empty name"):
        r.register("", 4)


def test_registry_runs_its_loader_once_before_the_first_lookup() -> None:
    calls: list[int] = []
    r: Registry[int] = Registry("thing", KeyError, loader=lambda: calls.append(1))
    assert calls == []
    assert r.names() == [] and r.find("x") is None
    assert calls == [1]


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_refuses_a_duplicate_the_same_way(kind: str) -> None:
    reg, _ = REGISTRIES[kind]
    name = reg.names()[0]
    with pytest.raises(ValueError, match=f"^{kind} '{name}' is already registered$"):
        reg.register(name, reg.get(name))
    assert reg.kind == kind


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_gives_the_same_unknown_name_error(kind: str) -> None:
    reg, error = REGISTRIES[kind]
    with pytest.raises(error, match=f"^unknown {kind} 'nope'; choose one of ") as info:
        reg.get("nope")
    assert "\n" not in str(info.value)
    assert all(name in str(info.value) for name in reg.names())


def test_the_config_literals_are_the_registered_names() -> None:
    assert get_args(SearchConfig.model_fields["strategy"].annotation) == tuple(
        strategies.STRATEGY_REGISTRY.names()
    )
    assert get_args(DeviceConfig.model_fields["energy_source"].annotation) == (
        "auto",
        *energy.list_energy_sources(),
    )


@pytest.mark.parametrize("name", strategies.STRATEGY_REGISTRY.names())
def test_every_strategy_builds(name: str) -> None:
    s = strategies.get_strategy(name, SearchConfig(), energy_objective=True)
    assert s.name == name and s.directions[0] == "maximize"
    assert (
        len(strategies.get_strategy(name, SearchConfig(), energy_objective=False).directions) <= 2
    )
    if s.bind is None:
        assert s.build(0) is not None
    else:  # a sampler that prices genomes with the problem's LUT (the predictor)
        from harmonic_nas.config import parse_config
        from harmonic_nas.testing.synthetic_problem import SyntheticFactory

        cfg = parse_config(
            {
                "name": "reg",
                "modalities": {
                    "image": {"preset": "avmnist", "shape": [1, 28, 28]},
                    "audio": {"preset": "avmnist", "shape": [1, 20, 20]},
                },
            }
        )
        assert strategies.make_sampler(s, 0, SyntheticFactory()(cfg)) is not None


@pytest.mark.parametrize("name", energy.list_energy_sources())
def test_every_energy_source_is_a_meter_of_its_name(name: str) -> None:
    cls = energy._REGISTRY.get(name)
    assert issubclass(cls, energy.EnergyMeter) and cls.name == name


@pytest.mark.parametrize("name", data_registry.list_datasets())
def test_every_dataset_entry_is_complete(name: str) -> None:
    entry = data_registry.get_dataset_entry(name)
    assert entry.name == name and callable(entry.builder) and entry.summary and entry.version >= 1


@pytest.mark.parametrize("name", lut_source._DEVICES.names())
def test_every_device_entry_is_complete(name: str) -> None:
    entry = lut_source.get_device(name)
    assert entry is not None and entry.name == name and entry.description
