"""Where the workers run the models: ``cpu`` (onnxruntime's CPU provider) or ``gpu`` (its CUDA provider,
with GPU energy from NVML). A missing GPU provider is a one-line error that says what to install."""

from __future__ import annotations

from typing import Sequence

from ..errors import InputError
from ..inference.deps import require

DEVICES = ("cpu", "gpu")
CPU_PROVIDER = "CPUExecutionProvider"
GPU_PROVIDER = "CUDAExecutionProvider"
GPU_HINT = ("install onnxruntime's GPU build with a CUDA runtime and driver (pip uninstall onnxruntime; "
            "pip install onnxruntime-gpu) and, for GPU energy, the 'nvml' extra")


def available_providers() -> list[str]:
    """The execution providers of the installed onnxruntime."""
    ort = require("onnxruntime", "profiling")
    return list(ort.get_available_providers())


def onnxruntime_version() -> str:
    return str(require("onnxruntime", "profiling").__version__)


def providers_for(device: str, available: Sequence[str] | None = None) -> list[str]:
    """The providers a worker asks for on ``device``; ``gpu`` without the CUDA provider is an error."""
    if device not in DEVICES:
        raise InputError(f"must be one of {', '.join(DEVICES)}, got {device!r}", where="--device")
    if device == "cpu":
        return [CPU_PROVIDER]
    have = list(available) if available is not None else available_providers()
    if GPU_PROVIDER not in have:
        raise InputError(f"no GPU provider: onnxruntime offers {', '.join(have) or 'none'}, not {GPU_PROVIDER}; "
                         f"{GPU_HINT}", where="--device")
    return [GPU_PROVIDER, CPU_PROVIDER]


def check_worker_providers(device: str, providers: Sequence[str]) -> None:
    """A GPU worker whose session fell back to the CPU (no CUDA runtime, no GPU) is an error, not a CPU profile."""
    if device == "gpu" and GPU_PROVIDER not in providers:
        raise InputError(f"the GPU provider did not load in the worker (it runs on {', '.join(providers)}); "
                         f"{GPU_HINT}", where="--device")
