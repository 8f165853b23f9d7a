"""A throwaway third-party plugin: an energy source reading a PDU's counter file.

The "PDU" is a text file holding cumulative watt-hours, as some PDUs expose;
the test writes it. This exercises discovery through the ``ipa_ext`` entry
point, the energy-source interface and option passing.
"""

from __future__ import annotations

import time
from pathlib import Path

from ipa_ext import hookimpl
from ipa_ext.energy import Domain, EnergySource, ProbeResult, Reading, Status

__version__ = "0.0.1"


class CounterFilePDU(EnergySource):
    name = "test-pdu"
    quality = "measured"

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def probe(self) -> ProbeResult:
        if self.path.is_file():
            return ProbeResult(Status.AVAILABLE, f"counter file {self.path}")
        return ProbeResult(Status.ABSENT, f"{self.path} not found", "point 'path' at the PDU counter file")

    def domains(self) -> list[Domain]:
        return [Domain("pdu0/outlet", "outlet")]

    def read(self) -> Reading:
        wh = float(self.path.read_text().strip())
        return Reading(time.monotonic(), {"pdu0/outlet": wh * 3600.0}, "measured")


@hookimpl
def register_energy_sources(register):
    register("test-pdu", CounterFilePDU)
