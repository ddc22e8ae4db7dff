"""Hardware stage: per-layer latency/energy lookup tables (LUTs) and the cost model.

- :func:`lut_key` builds a layer's key (the published Harmonic-NAS format where one exists);
- :class:`LUT` is the table (JSON, schema-versioned); :class:`CostModel` costs layers and
  architectures from it, with an optional fallback predictor for missing keys;
- :func:`profile_device` measures the configured search space on this machine (ONNX Runtime or
  torch), with energy from RAPL / NVML / Jetson INA3221 or a constant-power model;
- :func:`import_reference_lut` converts the published tables (and a device kit's results);
  :func:`get_lut` finds a device's table (:mod:`.lut_source`); :func:`validate_lut` measures how
  wrong the LUT is on random architectures, against the machine's own re-timing;
- :class:`MachineIdentity` (:func:`machine_identity`) is what a table was measured on;
  :class:`Calibration` maps the per-layer sum to whole-model latency;
- :func:`write_kit` writes a kit that profiles a device with only numpy and onnxruntime;
  :func:`predict_latencies` fills a sampled kit's table from other devices' tables.
"""

from __future__ import annotations

from harmonic_nas.hardware.calibration import Calibration
from harmonic_nas.hardware.cost import ArchCost, Cost, CostModel, FallbackPredictor
from harmonic_nas.hardware.energy import (
    ConstantPowerModel,
    EnergyMeter,
    Ina3221Meter,
    NvmlMeter,
    RaplMeter,
    list_energy_sources,
    make_energy_meter,
    register_energy_source,
)
from harmonic_nas.hardware.identity import MachineIdentity, machine_identity
from harmonic_nas.hardware.inventory import space_layer_specs
from harmonic_nas.hardware.keys import lut_key, parse_key
from harmonic_nas.hardware.kit import write_kit
from harmonic_nas.hardware.lut import (
    LUT,
    LUT_SCHEMA_VERSION,
    DeviceInfo,
    EnergyStats,
    LatencyStats,
    LUTEntry,
)
from harmonic_nas.hardware.lut_source import (
    DeviceEntry,
    get_lut,
    install_lut,
    installed_luts_dir,
    installed_path,
    list_devices,
    register_device,
    run_lut_path,
)
from harmonic_nas.hardware.profiler import profile_device, profile_layers
from harmonic_nas.hardware.reference import import_reference_lut
from harmonic_nas.hardware.transfer import predict_latencies
from harmonic_nas.hardware.validate import ValidationResult, save_validation, validate_lut

__all__ = [
    "LUT",
    "LUT_SCHEMA_VERSION",
    "ArchCost",
    "Calibration",
    "ConstantPowerModel",
    "Cost",
    "CostModel",
    "DeviceEntry",
    "DeviceInfo",
    "EnergyMeter",
    "EnergyStats",
    "FallbackPredictor",
    "Ina3221Meter",
    "LUTEntry",
    "LatencyStats",
    "MachineIdentity",
    "NvmlMeter",
    "RaplMeter",
    "ValidationResult",
    "get_lut",
    "import_reference_lut",
    "install_lut",
    "installed_luts_dir",
    "installed_path",
    "list_devices",
    "list_energy_sources",
    "lut_key",
    "machine_identity",
    "make_energy_meter",
    "parse_key",
    "predict_latencies",
    "profile_device",
    "profile_layers",
    "register_device",
    "register_energy_source",
    "run_lut_path",
    "save_validation",
    "space_layer_specs",
    "validate_lut",
    "write_kit",
]
