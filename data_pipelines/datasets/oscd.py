"""`oscd`: OSCD change detection (data_pipelines.oscd), one record per city: cube and cube2
[13, H, W] (the two dates, bands resampled onto the 10 m grid), change mask {0, 1}.

`data.paths` / `--input`: the dataset root in its published layout. Own block
`config.data.oscd`: cities (comma list; "" = dataset_split's, else all), dataset_split
("train" | "test": the root's train.txt / test.txt; "" = every city), label_convention
("auto" | "one_two": 1 no change, 2 change as the shipped tifs | "zero_one" as the README),
band_resampling (upsampling of the 20 m / 60 m bands: "bicubic" | "bilinear" | "nearest").
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import ml_collections

from data_pipelines import oscd
from data_pipelines import schema
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block, single_input

LICENCE = ("OSCD (Caye Daudt et al. 2018): images are modified Copernicus Sentinel data (free "
           "and open); change maps CC BY-NC-SA")


def config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.cities = ""                  # comma list of cities ("" = dataset_split's, else all)
  c.dataset_split = ""           # "train" | "test" (the root's lists); "" = every city
  c.label_convention = "auto"    # "auto" (from the values found) | "one_two" | "zero_one"
  c.band_resampling = "bicubic"  # upsampling of 20 m / 60 m bands onto the 10 m grid
  return c


def city_list(cfg) -> list[str]:
  """The cities a data config names: data.oscd.cities, else the official list of
  data.oscd.dataset_split, else every city under data.paths."""
  block = cfg.oscd
  if block.get("cities"):
    return [c.strip() for c in str(block.cities).split(",") if c.strip()]
  if block.get("dataset_split"):
    return oscd.official_cities(cfg.paths, block.dataset_split)
  return oscd.city_names(cfg.paths)


def _records(cfg) -> list[dict[str, Any]]:
  if cfg.get("verify_sha256"):
    from data_pipelines.checksums import verify_sha256sums  # pylint: disable=g-import-not-at-top
    verify_sha256sums(cfg.paths)
  bands = schema.parse_band_list(cfg.bands)
  return [oscd.load_city(cfg.paths, city, bands=bands, resampling=cfg.oscd.band_resampling,
                         label_convention=cfg.oscd.label_convention)
          for city in city_list(cfg)]


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  """options: cities (comma list, or "train" / "test": the root's lists; "" = all), bands
  (default all 13), resampling, label_convention, store_dtype, verify_sha256."""
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  root = single_input("oscd", inputs)
  options = dict(options)
  cities = options.pop("cities", "")
  if cities in ("train", "test"):
    keys = oscd.official_cities(root, cities)
  else:
    keys = [c.strip() for c in cities.split(",") if c.strip()] or oscd.city_names(root)
  load = functools.partial(oscd.load_city, root,
                           bands=schema.parse_band_list(options.pop("bands", "l1c")),
                           resampling=options.pop("resampling", "bicubic"),
                           label_convention=options.pop("label_convention", "auto"))
  return (ingest.dense_items("oscd", root, keys, load, **options),
          label_block("mask", oscd.CLASS_NAMES, ignore_value=-1))


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  return {"cities": flags["cities"], "bands": flags["bands"] or "l1c",
          "resampling": flags["band_resampling"], "label_convention": flags["label_convention"],
          "store_dtype": flags["dtype"], "verify_sha256": flags["verify_sha256"]}


SOURCE = DataSource(
    name="oscd", kind="dense",
    description="OSCD change detection, two dates per city and a change mask",
    record_keys=BASE_KEYS + ("cube2", "mask", "date", "date2", "crs", "bounds", "source"),
    class_names=oscd.CLASS_NAMES, licence=LICENCE, config=config, records=_records,
    ingest_items=_ingest_items, ingest_options=_ingest_options)
