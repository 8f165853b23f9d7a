"""One profiling job from start to end: check the request against the pipeline and the machine, resolve
the models, open (or resume) the output, measure idle power, sweep, and check the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..host import load_plugins
from .checks import Violation, monotonicity
from .device import onnxruntime_version, providers_for
from .energy import ProfileEnergy
from .grid import Plan, check_cpus, parse_int_list, select
from .machine import Machine, describe_machine
from .models import ResolvedModel, preflight, resolve
from .sweep import Progress, RowCallback, Settings, sweep
from .target import Target, load_target
from .writer import Header, ProfileFile

DEFAULT_CPUS = (1, 2)
Note = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    """What to profile and how (the command line's options, checked here)."""

    config: Path
    stages: str | None = None
    variants: str | None = None
    cpus: str | None = None
    batches: str = "1,2,4,8"
    seconds_per_row: float = 10.0
    min_batches: int = 10
    warmup: int = 2
    percentile: float = 99.0
    replicas: int = 1
    device: str = "cpu"
    idle_seconds: float = 5.0
    out: Path | None = None
    restart: bool = False
    cache_dir: str | None = None
    strict: bool = False


def _cpus(request: Request, machine: Machine) -> tuple[int, ...]:
    if request.cpus is not None:
        cpus = parse_int_list(request.cpus, "--cpus")
    else:
        cpus = tuple(c for c in DEFAULT_CPUS if c * request.replicas <= len(machine.usable_cpus)) or (1,)
    check_cpus(cpus, request.replicas, machine.usable_cpus)
    return cpus


def _out_path(request: Request, target: Target) -> Path:
    out = request.out or target.profiles or target.path.parent / "profiles.csv"
    if out.suffix.lower() in (".yaml", ".yml"):
        raise InputError("the profiler writes CSV; give --out FILE.csv", path=out, where="--out")
    return out


def _header(machine: Machine, request: Request, providers: list[str]) -> Header:
    return Header({
        "machine": machine.describe(),
        "machine-id": machine.identity,
        "onnxruntime": onnxruntime_version(),
        "device": f"{request.device} ({', '.join(providers)})",
        "latency": f"p{request.percentile:g}",
        "replicas": str(request.replicas),
        "measurement": (f"workers pinned with sched_setaffinity to `cpu` cores each, intra-op threads = cpu, "
                        f"inter-op 1, thread spinning off; {request.warmup} warm-up batch(es), then at least "
                        f"{request.seconds_per_row:g} s and {request.min_batches} batches per row"),
    })


class Job:
    """A prepared profiling run; :meth:`run` measures what the output does not hold yet."""

    def __init__(self, request: Request, target: Target, machine: Machine, plan: Plan,
                 models: dict[tuple[str, str], ResolvedModel], out: ProfileFile, settings: Settings,
                 note: Note) -> None:
        self.request, self.target, self.machine, self.plan = request, target, machine, plan
        self.models, self.out, self.settings, self.note = models, out, settings, note
        self.energy: ProfileEnergy | None = None
        self.progress: Progress | None = None

    @property
    def todo(self) -> int:
        return sum(1 for p in self.plan.points() if not self.out.has(p.key))

    def _energy(self) -> ProfileEnergy:
        host = load_plugins(self.target.plugins_load, disabled=self.target.plugins_disable,
                            strict=self.request.strict, base_dir=self.target.path.parent)
        energy = ProfileEnergy(host, self.target.energy_sources, self.target.energy_options,
                               machine_cpus=self.machine.logical_cpus)
        for n in energy.notes:
            self.note(n)
        if self.request.device == "gpu" and not energy.measures_gpu():
            self.note("no energy source measures the GPU (nvml is not available or not chosen): the energy "
                      "columns cover the host only")
        idle = energy.measure_idle(self.request.idle_seconds)
        self.out.header.fields["energy"] = (
            f"{energy.describe()}; idle {idle.machine_w:.3g} W for the machine ({idle.scope_w:.3g} W in scope, "
            f"measured over {idle.seconds:.1f} s before the sweep" + (f", plus a {idle.excluded_w:.3g} W idle floor "
                                                                        "the scope leaves out" if idle.excluded_w else "")
            + "); idle_w = machine idle x cpu / logical CPUs; energy_j_per_request = (window J - idle W in scope "
              "x window s) / requests" + ("; estimated from CPU time, not measured" if energy.quality != "measured"
                                          else ""))
        return energy

    def run(self, on_row: RowCallback | None = None) -> Progress:
        if self.todo and self.energy is None:
            self.energy = self._energy()
        if self.energy is None:  # nothing to measure
            self.progress = Progress(total=0, skipped=len(self.plan.points()))
            return self.progress
        self.progress = Progress(total=self.todo, skipped=len(self.plan.points()) - self.todo)

        def on_each(progress: Progress, measured: object) -> None:
            self.progress = progress
            if on_row is not None:
                on_row(progress, measured)  # type: ignore[arg-type]

        usable = self.machine.usable_cpus
        return sweep(self.plan, self.models, usable, self.settings, self.energy, self.out, on_each)

    def violations(self) -> list[Violation]:
        return monotonicity(self.out.rows.values())

    def close(self) -> None:
        if self.energy is not None:
            self.energy.close()


def prepare(request: Request, note: Note = lambda _m: None) -> Job:
    """Check everything that can be checked before measuring; build missing zoo models."""
    target = load_target(request.config)
    machine = describe_machine()
    cpus = _cpus(request, machine)
    batches = parse_int_list(request.batches, "--batches")
    providers = providers_for(request.device)
    pairs, skipped = select(target.stages, target.models, request.stages, request.variants)
    if skipped:
        note(f"skipping {len(skipped)} variant(s) that name no model: "
             + ", ".join(f"{s}/{v}" for s, v in skipped))
    models = {}
    for pair in pairs:
        ref = target.models[pair]
        models[pair] = resolve(ref, cache_dir=request.cache_dir, batches=batches, note=note)
        if ref.kind == "file":
            preflight(models[pair], (batches[0], batches[-1]))
    out_path = _out_path(request, target)
    order = [(s, v) for s, vs in target.stages for v in vs]
    out, notes = ProfileFile.open(out_path, _header(machine, request, providers), order, restart=request.restart)
    for n in notes:
        note(n)
    for (s, v), m in models.items():
        stale = out.forget_model(s, v, m.sha256)
        if stale:
            note(f"{s}/{v}: its model file changed; {stale} row(s) of it will be measured again")
    settings = Settings(request.seconds_per_row, request.min_batches, request.warmup, request.percentile,
                        request.device, tuple(providers))
    return Job(request, target, machine, Plan(pairs, cpus, batches, request.replicas), models, out, settings, note)
