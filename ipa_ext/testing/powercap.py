"""A faithful fake of Linux powercap sysfs for RAPL tests and the overhead benchmark.

Lays out ``intel-rapl:N`` zones and ``intel-rapl:N:M`` subzones with the
files the kernel exposes (``name``, ``energy_uj``, ``max_energy_range_uj``,
``enabled``), flat at the root as ``/sys/class/powercap`` lists them.
"""

from __future__ import annotations

from pathlib import Path

RANGE_UJ = 262143328850  # a typical max_energy_range_uj


class FakePowercap:
    """A powercap tree under ``root``; ``set(zone, uj)`` writes a zone's counter."""

    def __init__(self, root: Path, prefix: str = "intel-rapl") -> None:
        self.root = Path(root)
        self.prefix = prefix
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / prefix).mkdir(exist_ok=True)  # the control-type dir, not a zone

    def zone(self, key: str, name: str, energy_uj: int = 0, range_uj: int = RANGE_UJ) -> Path:
        d = self.root / f"{self.prefix}:{key}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{energy_uj}\n")
        (d / "max_energy_range_uj").write_text(f"{range_uj}\n")
        (d / "enabled").write_text("1\n")
        return d

    def set(self, key: str, energy_uj: int) -> None:
        (self.root / f"{self.prefix}:{key}" / "energy_uj").write_text(f"{energy_uj}\n")

    def path(self, key: str) -> Path:
        return self.root / f"{self.prefix}:{key}" / "energy_uj"


def server_tree(root: Path, sockets: int = 2, psys: bool = True, range_uj: int = RANGE_UJ) -> FakePowercap:
    """``sockets`` packages, each with core, uncore and dram subzones, plus an optional psys zone."""
    fake = FakePowercap(root)
    for s in range(sockets):
        fake.zone(f"{s}", f"package-{s}", range_uj=range_uj)
        fake.zone(f"{s}:0", "core", range_uj=range_uj)
        fake.zone(f"{s}:1", "uncore", range_uj=range_uj)
        fake.zone(f"{s}:2", "dram", range_uj=range_uj)
    if psys:
        fake.zone(f"{sockets}", "psys", range_uj=range_uj)
    return fake
