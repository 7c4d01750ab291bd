"""Host-side (numpy) loaders for the published CEvNS data releases.

Real data are never shipped with the package: every loader takes a path (the published data
folder, e.g. ``shared/data`` / ``$CEVNSJAX_DATA``, the data set's folder, or a file in it) and
returns a small frozen dataclass of read-only numpy arrays, with units in the field names.
Malformed files raise ``ValueError`` naming the file, line and column.
"""

from cevnsjax.io.releases.coherent_csi_2017 import CsI2017, QFMeasurements, load_coherent_csi_2017
from cevnsjax.io.releases.coherent_csi_2021 import CsI2021, load_coherent_csi_2021
from cevnsjax.io.releases.coherent_lar_2020 import LAr2020, Projection1D, SystMultipliers1D, load_coherent_lar_2020
from cevnsjax.io.releases.dresden_ii import DresdenII, load_dresden_ii
from cevnsjax.io.tables import Table, read_table, read_yaml

__all__ = [
    "CsI2017",
    "CsI2021",
    "DresdenII",
    "LAr2020",
    "Projection1D",
    "QFMeasurements",
    "SystMultipliers1D",
    "Table",
    "load_coherent_csi_2017",
    "load_coherent_csi_2021",
    "load_coherent_lar_2020",
    "load_dresden_ii",
    "read_table",
    "read_yaml",
]
