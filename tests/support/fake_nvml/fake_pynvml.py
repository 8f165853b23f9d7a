"""A fake NVML module with nvidia-ml-py's function names, error type and constants.

GPUs are dicts in the module-level list ``GPUS`` (tests edit it in process),
or are read at ``nvmlInit()`` from the JSON file named by ``$FAKE_NVML_GPUS``
(for CLI tests in a subprocess). Keys of a GPU:

- ``name``: the product name;
- ``energy_mj``: the total-energy counter in millijoules, ``"grow"`` for a
  counter that grows at ``power_mw`` in real time, or ``None`` when the GPU has
  no counter (pre-Volta: NOT_SUPPORTED);
- ``power_mw``: the power reading, or ``None`` (NOT_SUPPORTED);
- ``mig``: whether MIG mode is enabled (``None``: the GPU has no MIG);
- ``fail``: an NVML error code every energy and power call raises (a GPU that fell off the bus).

``INIT_ERROR`` makes ``nvmlInit`` raise that code (e.g. ``NVML_ERROR_LIBRARY_NOT_FOUND``).
"""

from __future__ import annotations

import json
import os
import time

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
}

GPUS: list[dict] = []
INIT_ERROR: int | None = None
calls: list[str] = []
_initialised = 0
_t0 = time.monotonic()


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"Unknown Error {self.value}")


class _Handle:
    def __init__(self, index: int) -> None:
        self.index = index


def _gpu(handle: _Handle) -> dict:
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    gpu = GPUS[handle.index]
    if gpu.get("fail"):
        raise NVMLError(int(gpu["fail"]))
    return gpu


def nvmlInit() -> None:
    global _initialised, GPUS
    calls.append("nvmlInit")
    if INIT_ERROR is not None:
        raise NVMLError(INIT_ERROR)
    path = os.environ.get("FAKE_NVML_GPUS")
    if path:
        with open(path) as fh:
            GPUS = json.load(fh)
    _initialised += 1


def nvmlShutdown() -> None:
    global _initialised
    calls.append("nvmlShutdown")
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    _initialised -= 1


def nvmlDeviceGetCount() -> int:
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return len(GPUS)


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    if not 0 <= index < len(GPUS):
        raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
    return _Handle(index)


def nvmlDeviceGetName(handle: _Handle) -> str:
    return GPUS[handle.index]["name"]


def nvmlDeviceGetMigMode(handle: _Handle) -> list[int]:
    mig = GPUS[handle.index].get("mig")
    if mig is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    mode = NVML_DEVICE_MIG_ENABLE if mig else NVML_DEVICE_MIG_DISABLE
    return [mode, mode]


def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
    calls.append("nvmlDeviceGetTotalEnergyConsumption")
    gpu = _gpu(handle)
    energy = gpu.get("energy_mj")
    if energy is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    if energy == "grow":
        return int(gpu["power_mw"] * (time.monotonic() - _t0))
    return int(energy)


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    calls.append("nvmlDeviceGetPowerUsage")
    power = _gpu(handle).get("power_mw")
    if power is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return int(power)
