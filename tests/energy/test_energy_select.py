"""Automatic choice of energy sources: by the ranks sources declare, never by their names."""

from __future__ import annotations

import pytest

from ipa_ext import hookimpl
from ipa_ext.energy.select import choose, probe_order, ranked
from ipa_ext.energy.source import Domain, EnergySource, EnergySourceError, ProbeResult, Reading, Status
from ipa_ext.host import load_plugins


def source_class(rank: int | None, *, available: bool = True, quality: str = "measured",
                 covers: str = "cpu") -> type[EnergySource]:
    class Fake(EnergySource):
        auto_rank = rank
        instances: list[EnergySource] = []

        def __init__(self) -> None:
            self.closed = False
            self.instances.append(self)

        def probe(self) -> ProbeResult:
            return ProbeResult(Status.AVAILABLE) if available else ProbeResult(Status.ABSENT, "no meter here", "plug one in")

        def domains(self) -> list[Domain]:
            return [Domain("meter", "meter")]

        def read(self) -> Reading:
            return Reading(0.0, {"meter": 0.0}, self.quality)

        def close(self) -> None:
            self.closed = True

    Fake.quality = quality  # type: ignore[assignment]
    Fake.covers = covers
    return Fake


class ThirdParty:
    """A plugin object such as a third-party package registers (through the public hook)."""

    def __init__(self, **sources: type[EnergySource]) -> None:
        self.sources = sources

    @hookimpl
    def register_energy_sources(self, register) -> None:
        for name, cls in self.sources.items():
            register(name, cls)


def host_with(**sources: type[EnergySource]):
    host = load_plugins(entry_points=False)
    rec = host.add_plugin(ThirdParty(**sources), "third-party")
    assert rec.status == "loaded", rec.error
    return host


def test_third_party_source_that_ranks_best_is_chosen_over_the_builtins():
    host = load_plugins()
    builtin_best = max(getattr(host.registry.get("energy source", n).factory, "auto_rank", None) or 0
                       for n in host.registry.names("energy source"))
    rec = host.add_plugin(ThirdParty(wattmeter=source_class(builtin_best + 1)), "acme-wattmeter")
    assert rec.status == "loaded", rec.error
    assert ranked(host)["cpu"][0] == "wattmeter"
    choice = choose(host)
    try:
        assert type(choice.sources[0]).__name__ == "Fake" and choice.sources[0].name == "wattmeter"
        assert all(s.covers != "cpu" for s in choice.sources[1:])  # one source per kind of hardware
        assert choice.notes == ()  # nothing ranked above it was passed over
    finally:
        for s in choice.sources:
            s.close()


def test_third_party_source_ranked_below_an_available_one_is_not_chosen():
    host = host_with(low=source_class(5), high=source_class(50))
    assert [s.name for s in choose(host).sources] == ["high"]


def test_unavailable_sources_are_passed_over_with_their_reason_and_closed():
    best = source_class(90, available=False)
    host = host_with(best=best, next=source_class(10))
    choice = choose(host)
    assert [s.name for s in choice.sources] == ["next"]
    assert choice.notes == ("best: absent: no meter here (hint: plug one in)",)
    assert [s.closed for s in best.instances] == [True]


def test_measured_beats_estimated_whatever_the_rank():
    host = host_with(model=source_class(1000, quality="estimated"), counter=source_class(1))
    assert ranked(host) == {"cpu": ["counter", "model"]}
    assert [s.name for s in choose(host).sources] == ["counter"]


def test_an_estimated_choice_says_so():
    host = host_with(counter=source_class(9, available=False), model=source_class(1, quality="estimated"))
    choice = choose(host)
    assert [s.name for s in choice.sources] == ["model"]
    assert choice.notes[-1] == "using model: figures are estimated, not measured"


def test_one_source_per_kind_of_hardware_and_silence_where_none_is_available():
    host = host_with(cpu_a=source_class(2), cpu_b=source_class(1), gpu_a=source_class(1, covers="gpu"),
                     npu_a=source_class(1, covers="npu", available=False))
    choice = choose(host)
    assert [s.name for s in choice.sources] == ["cpu_a", "gpu_a"]
    assert choice.notes == ()


def test_sources_without_a_rank_are_never_chosen_automatically():
    host = host_with(needs_options=source_class(None), ranked_off=source_class(3, available=False))
    assert ranked(host) == {"cpu": ["ranked_off"]}
    assert probe_order(host) == ["ranked_off", "needs_options"]
    with pytest.raises(EnergySourceError, match="no energy source is available: ranked_off: absent"):
        choose(host)


def test_builtins_declare_their_ranks():
    host = load_plugins()
    order = ranked(host)
    assert order["cpu"] == ["rapl", "perf", "estimate"]
    assert order["gpu"] == ["nvml"]
    assert all("kepler" not in names for names in order.values())  # it needs options
