"""Label nomenclatures: BigEarthNet (CORINE 43 and the 19-class BigEarthNet-19) and EuroSAT.

BigEarthNet-19 (Sumbul et al., "BigEarthNet-MM", IEEE GRSM 2021) merges the 43 CORINE Land
Cover level-3 classes of BigEarthNet v1.0 into 19 classes and drops 10 of them that cannot
be recognised at 10-60 m (urban sub-classes, bare rock, burnt areas, intertidal flats ...).
SpectralGPT fine-tunes BigEarthNet on the 19-class multi-hot target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BIGEARTHNET43 = (
    "Continuous urban fabric", "Discontinuous urban fabric", "Industrial or commercial units",
    "Road and rail networks and associated land", "Port areas", "Airports",
    "Mineral extraction sites", "Dump sites", "Construction sites", "Green urban areas",
    "Sport and leisure facilities", "Non-irrigated arable land", "Permanently irrigated land",
    "Rice fields", "Vineyards", "Fruit trees and berry plantations", "Olive groves", "Pastures",
    "Annual crops associated with permanent crops", "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
    "Natural grassland", "Moors and heathland", "Sclerophyllous vegetation",
    "Transitional woodland/shrub", "Beaches, dunes, sands", "Bare rock",
    "Sparsely vegetated areas", "Burnt areas", "Inland marshes", "Peatbogs", "Salt marshes",
    "Salines", "Intertidal flats", "Water courses", "Water bodies", "Coastal lagoons",
    "Estuaries", "Sea and ocean",
)

# BigEarthNet-19 class -> the CORINE-43 classes merged into it.
_BEN19_GROUPS = (
    ("Urban fabric", ("Continuous urban fabric", "Discontinuous urban fabric")),
    ("Industrial or commercial units", ("Industrial or commercial units",)),
    ("Arable land", ("Non-irrigated arable land", "Permanently irrigated land", "Rice fields")),
    ("Permanent crops", ("Vineyards", "Fruit trees and berry plantations", "Olive groves",
                         "Annual crops associated with permanent crops")),
    ("Pastures", ("Pastures",)),
    ("Complex cultivation patterns", ("Complex cultivation patterns",)),
    ("Land principally occupied by agriculture, with significant areas of natural vegetation",
     ("Land principally occupied by agriculture, with significant areas of natural vegetation",)),
    ("Agro-forestry areas", ("Agro-forestry areas",)),
    ("Broad-leaved forest", ("Broad-leaved forest",)),
    ("Coniferous forest", ("Coniferous forest",)),
    ("Mixed forest", ("Mixed forest",)),
    ("Natural grassland and sparsely vegetated areas",
     ("Natural grassland", "Sparsely vegetated areas")),
    ("Moors, heathland and sclerophyllous vegetation",
     ("Moors and heathland", "Sclerophyllous vegetation")),
    ("Transitional woodland, shrub", ("Transitional woodland/shrub",)),
    ("Beaches, dunes, sands", ("Beaches, dunes, sands",)),
    ("Inland wetlands", ("Inland marshes", "Peatbogs")),
    ("Coastal wetlands", ("Salt marshes", "Salines")),
    ("Inland waters", ("Water courses", "Water bodies")),
    ("Marine waters", ("Coastal lagoons", "Estuaries", "Sea and ocean")),
)
BIGEARTHNET19 = tuple(name for name, _ in _BEN19_GROUPS)
_43_TO_19 = {old: i for i, (_, olds) in enumerate(_BEN19_GROUPS) for old in olds}

EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                   "Pasture", "PermanentCrop", "Residential", "River", "SeaLake")

NOMENCLATURES: dict[str, tuple[str, ...]] = {
    "bigearthnet19": BIGEARTHNET19, "bigearthnet43": BIGEARTHNET43, "eurosat": EUROSAT_CLASSES,
}


def bigearthnet_indices(names: Sequence[str], nomenclature: str = "bigearthnet19") -> list[int]:
  """CORINE-43 label names -> sorted unique class indices in `nomenclature` (19 or 43).

  Labels that BigEarthNet-19 drops are silently left out (that is the published recipe);
  unknown names raise KeyError naming the label.
  """
  unknown = [n for n in names if n not in BIGEARTHNET43]
  if unknown:
    raise KeyError(f"unknown BigEarthNet (CORINE-43) labels {unknown}")
  if nomenclature == "bigearthnet43":
    return sorted({BIGEARTHNET43.index(n) for n in names})
  if nomenclature == "bigearthnet19":
    return sorted({_43_TO_19[n] for n in names if n in _43_TO_19})
  raise ValueError(f"unknown nomenclature {nomenclature!r}")


def multi_hot(indices: Sequence[int], num_classes: int) -> np.ndarray:
  """Class indices -> float32 [num_classes] multi-hot vector."""
  out = np.zeros((num_classes,), np.float32)
  idx = np.asarray(indices, np.int64)
  if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
    raise ValueError(f"label indices {list(idx)} out of range for {num_classes} classes")
  out[idx] = 1.0
  return out
