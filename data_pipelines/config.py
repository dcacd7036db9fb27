"""`default_data_config()`: every `config.data` field with its default.

The common fields sit at the top level; each source with options of its own adds its block,
declared by its module in `data_pipelines.datasets` (`config.data.oscd.cities`,
`config.data.tfds.name`, ...). The dict is locked: a misspelt field, at the top or in a
block, is an error naming it (also `check_data_config` for copies that lost the lock).

Light on purpose: configs import this module, so it imports only ml_collections, the band
names and the source modules (no grain, tfds, jax). The pipeline that reads these fields is
`pipeline.py`.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from data_pipelines import datasets
from data_pipelines import schema

SOURCES = datasets.NAMES


def default_data_config() -> ml_collections.ConfigDict:
  """Every data field with its default; embed as `config.data` in a training config."""
  c = ml_collections.ConfigDict()
  # --- where the data is
  c.source = "tfrecord"        # a name of data_pipelines.datasets (docs/data_pipelines.md):
  #                              "tfrecord" (shards from `ingest`), "tfds", "eurosat",
  #                              "sen1floods11_tiles", "synthetic"; dense tasks (whole images
  #                              in memory, random crops): "oscd", "sen1floods11_seg",
  #                              "segmunich"
  c.paths = ""                 # tfrecord: shard dir with manifest.json | glob | "a,b,c" (gs:// ok);
  #                              eurosat, sen1floods11_*, oscd, segmunich: the dataset root
  c.split_file = ""            # keep only the ids listed (one per line; data_pipelines.splits)
  c.verify_sha256 = False      # check the root's SHA256SUMS.txt before reading
  # --- dense tasks (oscd, sen1floods11_seg, segmunich): masks int32, -1 = ignored pixel
  c.crops_per_image = 0        # training crops per image and epoch (0 = ceil(H/S) * ceil(W/S))
  c.rot90 = False              # dense training: random k*90 degree turn (official OSCD, SegMunich)
  c.minmax_scope = "image"     # dense "minmax": "image" (whole image, as evaluation sees it) |
  #                              "patch" (each crop / tile: official OSCD, with minmax_eps=0)
  # --- what an example holds
  c.bands = ",".join(schema.SPECTRALGPT_BANDS)  # comma list or band set ("spectralgpt"), by name;
  #              "eurosat_official_drop10" reproduces the official EuroSAT index-10 drop
  c.num_dates = 1              # T > 1: time series, cube [B, T, C, S, S] (records [T, C, H, W])
  c.label_type = "none"        # "none" | "single" (int32 [B]) | "multi" (float32 [B, K])
  c.num_classes = 0            # K for multi-label (19 for BigEarthNet-19)
  c.use_mask = False           # segmentation mask -> "mask" int32 [B, H, W]
  c.use_cube2 = False          # change detection second date -> "cube2"
  c.with_keys = False          # add record keys ("key", str [B]) for debugging/eval
  c.harmonize_offset = True    # apply RADIO_ADD_OFFSET still present in records (baseline>=04.00)
  # --- normalization (official recipes: pretraining minmax; EuroSAT zscore; BEN sentinel_clip)
  c.normalization = "minmax"   # "minmax" | "zscore" | "sentinel_clip" | "none" (per date)
  c.stats = "eurosat_official"  # stats registry name (data_pipelines.stats) or "manifest"
  c.minmax_eps = 1e-12
  c.sentinel_clip_quantize = True   # reproduce the official uint8 truncation
  # --- geometry (one crop and flip per example, shared by all its dates)
  c.train = True               # True: random crop + flips; False: deterministic eval path
  c.crop = "resized"           # train crops of record sources: "resized" (RandomResizedCrop) |
  #                              "window" (plain random window + flips / rot90, masks kept
  #                              pixel for pixel: dense shards); dense sources always "window"
  c.image_size = 128
  c.crop_scale = (0.2, 1.0)    # RandomResizedCrop area fraction
  c.crop_ratio = (3 / 4, 4 / 3)
  c.interpolation = "bicubic"  # "bicubic" | "bilinear" | "nearest" (masks always nearest)
  c.antialias = True
  c.hflip_prob = 0.5
  c.vflip_prob = 0.0
  c.eval_crop_pct = 0.875      # eval: Resize(int(size / pct)) then CenterCrop(size)
  # --- order, batching, parallelism
  c.batch_size = 64            # GLOBAL batch; each host yields batch_size // process_count
  c.drop_remainder = True
  c.num_epochs = ml_collections.config_dict.placeholder(int)   # None = repeat forever
  c.seed = 0
  c.shuffle = True             # shuffle shard order / records (only when train=True)
  c.shuffle_window = 256       # window shuffle over records (memory: window x record size)
  c.cycle_length = 4           # shards read concurrently per worker
  c.num_workers = 0            # grain multiprocessing workers per host (0 = in process)
  c.per_worker_buffer_size = 2
  c.skip_corrupt = False       # True: count/log corrupt records and go on; False: raise
  # --- each source's own block (config.data.<source>.*), declared by its module
  for name in datasets.NAMES:
    src = datasets.get(name)
    if src.config is not None:
      c[name] = src.config()
  c.lock()
  return c


def _unknown_fields(cfg, reference, prefix: str) -> list[str]:
  out = []
  for key in cfg.keys():
    if key not in reference:
      out.append(f"{prefix}{key}")
    elif isinstance(reference[key], ml_collections.ConfigDict) and hasattr(cfg[key], "keys"):
      out += _unknown_fields(cfg[key], reference[key], f"{prefix}{key}.")
  return out


def check_data_config(cfg) -> None:
  """Raises ValueError naming the first field `default_data_config` does not know (a typo,
  or a field of the flat layout before the per-source blocks, e.g. data.cities ->
  data.oscd.cities); also an unknown data.source."""
  unknown = _unknown_fields(cfg, default_data_config(), "data.")
  if unknown:
    raise ValueError(f"unknown data config field {unknown[0]!r}"
                     f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; "
                     "see data_pipelines/config.py and docs/data_pipelines.md")
  datasets.get(cfg.source)


def set_fields(d: ml_collections.ConfigDict, **fields: Any) -> ml_collections.ConfigDict:
  """`d.<k> = v` for each field; a dict value updates the source block `d.<k>` field by field
  (`oscd={"cities": "paris"}`). Unknown fields raise, naming the field."""
  for k, v in fields.items():
    if isinstance(v, dict) and isinstance(d.get(k), ml_collections.ConfigDict):
      d[k].update(v)
    else:
      setattr(d, k, v)
  return d


def produces(source: str, key: str) -> bool:
  """Whether records of `source` carry `key` (e.g. "cube2": change detection)."""
  return key in datasets.get(source).record_keys
