"""`eurosat`: EuroSAT-MS 13-band GeoTIFFs (64 x 64 px, uint16 DN), single-label, 10 classes.

Layout: `<root>/<Class>/<Class>_<n>.tif`; the label is the folder (and file-name prefix), an
index into `CLASS_NAMES` (the standard EuroSAT order). The files carry no band descriptions:
their plane order is B01 ... B12 then B8A (`schema.EUROSAT_BANDS`), so records name their
planes by band and `data.bands` selects the model's bands by name (B10 dropped, B8A in its
slot), as for the other 13-band sources. When the root holds SHA256SUMS.txt every file is
checked against it before reading (`verify_sha256` makes a missing sums file an error).

Read into memory with `data.source="eurosat"` (`data.paths` = root) or written to shards with
`ingest --source eurosat --input ROOT`. `split_ids` is the deterministic per-class split
(seeded) behind configs/eval/splits/eurosat_subset_{train,test}.txt (`ingest --split_file`
writes one split).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines.datasets import _flags
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block, single_input
from data_pipelines.labels import EUROSAT_CLASSES as CLASS_NAMES
IMAGE_SHAPE = (64, 64)
SUMS = "SHA256SUMS.txt"
SPLITS = ("train", "test")
LICENCE = ("EuroSAT (Helber et al. 2019): MIT License, Copyright (c) 2023 Patrick Helber; "
           "contains modified Copernicus Sentinel data")


def verify(root: str, required: bool = False) -> int:
  """Checks the files against root/SHA256SUMS.txt when present (or `required`); returns the
  number of files checked (0: no sums file and not required)."""
  from data_pipelines.checksums import verify_sha256sums  # pylint: disable=g-import-not-at-top
  if not required and not (pathlib.Path(root) / SUMS).exists():
    return 0
  return verify_sha256sums(root)


def list_files(root: str) -> list[str]:
  """Sorted `<root>/<Class>/<Class>_<n>.tif` paths (BadInputError naming a misplaced file)."""
  from data_pipelines.errors import BadInputError  # pylint: disable=g-import-not-at-top
  base = pathlib.Path(root)
  if not base.is_dir():
    raise FileNotFoundError(f"EuroSAT root {root} is not a folder")
  out = []
  for path in sorted(base.glob("*/*.tif")):
    cls = path.parent.name
    if cls not in CLASS_NAMES:
      raise BadInputError(path, "label", f"folder {cls!r} is not a EuroSAT class "
                          f"{list(CLASS_NAMES)}")
    if not path.stem.startswith(f"{cls}_"):
      raise BadInputError(path, "label", f"file name does not start with its class {cls!r}")
    out.append(str(path))
  if not out:
    raise FileNotFoundError(f"no <Class>/<Class>_<n>.tif under {root}")
  return out


def _items(root: str, options: dict[str, Any]):
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  if options.get("verify_sha256"):   # as for every source: only when asked for
    verify(root, required=True)
  items, _ = ingest.geotiff_items(list_files(root), bands="eurosat", label_from_dir=True,
                                  classes=CLASS_NAMES, expect_shape=IMAGE_SHAPE,
                                  harmonize=options.get("harmonize", True),
                                  store_dtype=options.get("store_dtype"))
  return items


def _records(cfg) -> list[dict[str, Any]]:
  """Every image under data.paths: cube uint16 [13, 64, 64] (EUROSAT_BANDS), label, key."""
  return [item.load() for item in _items(str(cfg.paths),
                                         {"verify_sha256": cfg.get("verify_sha256")})]


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  return _items(single_input("eurosat", inputs), options), label_block("single", CLASS_NAMES)


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  """verify_sha256 is True when asked for or when the root has sums (checked either way), so
  the manifest's options say what was done."""
  has_sums = any((pathlib.Path(p) / SUMS).exists() for p in flags["input"])
  return {"verify_sha256": bool(flags["verify_sha256"] or has_sums), **_flags.common(flags)}


def _number(example_id: str) -> int:
  tail = example_id.rsplit("_", 1)[-1]
  return int(tail) if tail.isdigit() else -1


def split_ids(ids: Sequence[str], *, seed: int = 0, test_per_class: int = 6,
              ) -> dict[str, list[str]]:
  """{"train", "test": ids}: one generator `default_rng(seed)` permutes each class's ids
  ("Forest_7", sorted by number) in label order; the first `test_per_class` are test, the rest
  train. With seed 0 this is configs/eval/splits/eurosat_subset_{train,test}.txt (14 / 6 per
  class on the shipped subset). The same ids and seed always give the same split."""
  rng = np.random.default_rng(seed)
  out: dict[str, list[str]] = {s: [] for s in SPLITS}
  for cls in CLASS_NAMES:
    mine = sorted((i for i in ids if i.rsplit("_", 1)[0] == cls), key=lambda i: (_number(i), i))
    if len(mine) <= test_per_class:
      raise ValueError(f"class {cls} has {len(mine)} ids; the split needs more than "
                       f"{test_per_class}")
    picked = [mine[j] for j in rng.permutation(len(mine))]
    out["test"] += picked[:test_per_class]
    out["train"] += picked[test_per_class:]
  unknown = sorted(set(ids) - {i for part in out.values() for i in part})
  if unknown:
    raise ValueError(f"ids {unknown[:5]} do not start with a EuroSAT class name")
  return out


SOURCE = DataSource(
    name="eurosat", kind="records",
    description="EuroSAT-MS 13-band GeoTIFFs, 10 classes (label from the folder)",
    record_keys=BASE_KEYS + ("label", "label_names", "crs", "bounds", "source"),
    class_names=CLASS_NAMES, licence=LICENCE, records=_records,
    ingest_items=_ingest_items, ingest_options=_ingest_options)
