"""The ``nvml`` energy source: NVIDIA GPUs through NVML (the ``nvml`` extra, nvidia-ml-py).

One domain per GPU (``gpu0``, ``gpu1``, ...). GPUs with an energy counter
(``nvmlDeviceGetTotalEnergyConsumption``, millijoules, Volta and newer) are
read directly; others are covered by a background sampler that integrates
``nvmlDeviceGetPowerUsage`` (milliwatts). With MIG enabled the counter is the
whole GPU's: NVML has no per-instance energy or power. The NVML module name is
a parameter (default ``pynvml``), so tests can load a fake with the same functions.
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.energy.counters import Counter
from ipa_ext.energy.source import Domain, EnergySource, EnergySourceError, ProbeResult, Reading, Status
from ipa_ext.units import MILLIJOULES_PER_JOULE, MILLIWATTS_PER_WATT

EXTRA_HINT = "pip install 'ipa-ext[nvml]' (nvidia-ml-py)"


@dataclass
class Gpu:
    index: int
    handle: Any
    name: str
    mode: str  # "counter" | "sampler" | "unsupported"
    mig: bool
    note: str = ""


def _err_code(exc: BaseException) -> int | None:
    return getattr(exc, "value", None)


class NvmlSource(EnergySource):
    """Cumulative joules per NVIDIA GPU from NVML."""

    name = "nvml"
    quality = "measured"
    auto_rank = 10
    covers = "gpu"

    def __init__(self, module: str = "pynvml", sample_interval_s: float = 0.1) -> None:
        self.module_name = module
        self.sample_interval_s = option("sample_interval_s", sample_interval_s, positive=True, maximum=3600)
        self.resolution_s = 0.0
        self._nvml: ModuleType | None = None
        self._gpus: list[Gpu] | None = None
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._sampled: dict[str, dict[str, Any]] = {}  # id -> total_j, last_w, last_s, broken_since
        self._sampled_gap: dict[str, float] = {}
        self._gaps: set[str] = set()
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ NVML access
    def _module(self) -> ModuleType:
        if self._nvml is None:
            self._nvml = importlib.import_module(self.module_name)
        return self._nvml

    def _error_class(self) -> type[BaseException]:
        return getattr(self._module(), "NVMLError", Exception)

    def _code(self, attr: str) -> int | None:
        return getattr(self._module(), attr, None)

    def _unsupported(self, exc: BaseException) -> bool:
        """NOT_SUPPORTED, or FUNCTION_NOT_FOUND from a driver too old to have the call."""
        return _err_code(exc) in (self._code("NVML_ERROR_NOT_SUPPORTED"), self._code("NVML_ERROR_FUNCTION_NOT_FOUND"))

    def _init(self) -> list[Gpu]:
        nv = self._module()
        nv.nvmlInit()
        gpus = []
        for i in range(int(nv.nvmlDeviceGetCount())):
            gpus.append(self._inspect(i, nv.nvmlDeviceGetHandleByIndex(i)))
        return gpus

    def _inspect(self, i: int, h: Any) -> Gpu:
        nv = self._module()
        err = self._error_class()
        name = nv.nvmlDeviceGetName(h)
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        mig = False
        try:
            current, _pending = nv.nvmlDeviceGetMigMode(h)
            mig = current == getattr(nv, "NVML_DEVICE_MIG_ENABLE", 1)
        except err:
            pass  # no MIG on this GPU
        mig_note = " (MIG enabled: this is the whole GPU's energy; NVML has no per-instance power)" if mig else ""
        try:
            nv.nvmlDeviceGetTotalEnergyConsumption(h)
            return Gpu(i, h, str(name), "counter", mig, "energy counter" + mig_note)
        except err as exc:
            if not self._unsupported(exc):
                return Gpu(i, h, str(name), "unsupported", mig, f"energy counter failed: {exc}")
        try:
            nv.nvmlDeviceGetPowerUsage(h)
            return Gpu(i, h, str(name), "sampler", mig,
                       f"no energy counter (pre-Volta); power sampled every {self.sample_interval_s:g} s"
                       + mig_note)
        except err as exc:
            why = ("NVML reports neither energy nor power for it" if self._unsupported(exc)
                   else f"power reading failed: {exc}")
            if mig:
                why += "; MIG instances have no power reading"
            return Gpu(i, h, str(name), "unsupported", mig, why)

    # ------------------------------------------------------------------ interface
    def probe(self) -> ProbeResult:
        try:
            nv = self._module()
        except ImportError:
            return ProbeResult(Status.ABSENT, f"the NVML bindings ({self.module_name}) are not installed", EXTRA_HINT)
        except Exception as exc:
            return ProbeResult(Status.ABSENT, f"importing {self.module_name} failed: {exc}", EXTRA_HINT)
        err = getattr(nv, "NVMLError", Exception)
        try:
            gpus = self._init()
        except err as exc:
            code = _err_code(exc)
            if code == getattr(nv, "NVML_ERROR_LIBRARY_NOT_FOUND", object()):
                return ProbeResult(Status.ABSENT, f"NVML library not found ({exc}): no NVIDIA driver here",
                                   "install the NVIDIA driver (libnvidia-ml.so.1); without an NVIDIA GPU use rapl, perf or estimate")
            if code == getattr(nv, "NVML_ERROR_DRIVER_NOT_LOADED", object()):
                return ProbeResult(Status.ABSENT, f"NVIDIA driver not loaded ({exc})", "load the nvidia kernel module")
            if code == getattr(nv, "NVML_ERROR_NO_PERMISSION", object()):
                return ProbeResult(Status.PERMISSION, f"NVML refused access ({exc})",
                                   "grant access to /dev/nvidia* (e.g. the video group) or run as root")
            return ProbeResult(Status.ABSENT, f"NVML failed: {exc}", "check the NVIDIA driver with nvidia-smi")
        except Exception as exc:  # probe never raises
            return ProbeResult(Status.ABSENT, f"NVML failed: {type(exc).__name__}: {exc}", "check the NVIDIA driver")
        finally:
            try:
                nv.nvmlShutdown()
            except Exception:
                pass
        if not gpus:
            return ProbeResult(Status.ABSENT, "NVML sees no GPUs", "check nvidia-smi and CUDA_VISIBLE_DEVICES")
        detail = "; ".join(f"gpu{g.index} {g.name}: {g.note}" for g in gpus)
        if all(g.mode == "unsupported" for g in gpus):
            return ProbeResult(Status.ABSENT, detail, "these GPUs report no energy; use a PDU or the estimate source")
        return ProbeResult(Status.AVAILABLE, detail)

    def _ensure(self) -> list[Gpu]:
        if self._gpus is None:
            try:
                nv = self._module()
            except ImportError:
                raise EnergySourceError(f"nvml: the NVML bindings are not installed; {EXTRA_HINT}") from None
            try:
                self._gpus = self._init()
            except getattr(nv, "NVMLError", Exception) as exc:
                raise EnergySourceError(f"nvml: cannot initialise NVML: {exc}") from None
            now = time.monotonic()
            for g in self._gpus:
                if g.mode == "counter":
                    self._counters[f"gpu{g.index}"] = Counter(now, None)
                elif g.mode == "sampler":
                    self._sampled[f"gpu{g.index}"] = {"total_j": 0.0, "last_w": None, "last_s": None,
                                                      "broken_since": None}
                    self._sampled_gap[f"gpu{g.index}"] = 0.0
            if self._sampled:
                self.resolution_s = self.sample_interval_s
        return self._gpus

    def domains(self) -> list[Domain]:
        return [Domain(f"gpu{g.index}", "gpu", None) for g in self._ensure() if g.mode != "unsupported"]

    def _sample_power(self, g: Gpu, now: float) -> None:
        """One power sample, integrated by the trapezoid rule (caller holds the lock).

        A failed sample makes the time since the last good one a gap, until a
        sample succeeds again and integration restarts from it.
        """
        nv = self._module()
        key = f"gpu{g.index}"
        st = self._sampled[key]
        try:
            watts = float(nv.nvmlDeviceGetPowerUsage(g.handle)) / MILLIWATTS_PER_WATT
        except self._error_class():
            if st.get("broken_since") is None:
                st["broken_since"] = st["last_s"] if st["last_s"] is not None else now
            st["last_w"] = st["last_s"] = None
            self._gaps.add(key)
            return
        if st.get("broken_since") is not None:
            self._sampled_gap[key] += now - st["broken_since"]
            st["broken_since"] = None
        elif st["last_w"] is not None and st["last_s"] is not None:
            st["total_j"] += (watts + st["last_w"]) / 2.0 * (now - st["last_s"])
        st["last_w"], st["last_s"] = watts, now

    def _sampled_gap_now(self, key: str, now: float) -> float:
        since = self._sampled[key].get("broken_since")
        return self._sampled_gap[key] + (now - since if since is not None else 0.0)

    def read(self) -> Reading:
        gpus = self._ensure()
        nv = self._module()
        with self._lock:
            now = time.monotonic()
            for g in gpus:
                key = f"gpu{g.index}"
                if g.mode == "counter":
                    c = self._counters[key]
                    try:
                        mj = nv.nvmlDeviceGetTotalEnergyConsumption(g.handle)
                    except self._error_class() as exc:
                        c.missing(now, str(exc))
                        self._gaps.add(key)
                        continue
                    if c.update(float(mj) / MILLIJOULES_PER_JOULE, now) is not None:
                        self._gaps.add(key)
                elif g.mode == "sampler":
                    self._sample_power(g, now)
            joules = {k: c.total_j for k, c in self._counters.items()}
            joules.update({k: float(st["total_j"]) for k, st in self._sampled.items()})
            gap_s = {k: g for k, c in self._counters.items() if (g := c.gap_until(now)) > 0}
            gap_s.update({k: v for k in self._sampled if (v := self._sampled_gap_now(k, now)) > 0})
            gaps = tuple(sorted(self._gaps))
            self._gaps.clear()
        if self._sampled and self._sampler is None:
            self._start_sampler(gpus)
        return Reading(now, joules, "measured", gaps, gap_s)

    def _start_sampler(self, gpus: list[Gpu]) -> None:
        sampled = [g for g in gpus if g.mode == "sampler"]

        def loop() -> None:
            while not self._stop.wait(self.sample_interval_s):
                with self._lock:
                    now = time.monotonic()
                    for g in sampled:
                        self._sample_power(g, now)

        self._sampler = threading.Thread(target=loop, name="ipa-ext-nvml-sampler", daemon=True)
        self._sampler.start()

    def close(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
            self._sampler = None
        if self._gpus is not None:
            try:
                self._module().nvmlShutdown()
            except Exception:
                pass
            self._gpus = None


@hookimpl
def register_energy_sources(register) -> None:
    register("nvml", NvmlSource)
