"""The grain input pipeline, built from `config.data` (see `default_data_config`).

TFRecord shards (written by `ingest`), per host:
  shard files[host::hosts] -> shuffle shard order per epoch (seeded) -> repeat(num_epochs)
  -> one CRC-checked TFRecord reader per shard -> interleave(cycle_length)
  -> window shuffle (seeded) -> parse + select bands by name -> normalize
  -> train: RandomResizedCrop + flips | eval: Resize + CenterCrop
  -> batch(global_batch / hosts) -> multiprocess prefetch(num_workers)
tfds (array_record, random access): records[host::hosts] -> global shuffle -> same tail.

The returned iterator yields host-local numpy batches and is checkpointable
(`get_state`/`set_state`, or `spectralgpt_jax.checkpoints.save`);
`global_batch.make_global_batch` turns a batch into global `jax.Array`s.
"""

from __future__ import annotations

import functools
from typing import Any

import grain
import ml_collections
import numpy as np
from absl import flags, logging

from data_pipelines import schema
from data_pipelines import sources
from data_pipelines import stats as stats_lib
from data_pipelines import tfds_source
from data_pipelines import transforms as T
from data_pipelines.tfrecord import CheckedTFRecordIterDataset


def default_data_config() -> ml_collections.ConfigDict:
  """Every data field with its default; embed as `config.data` in a training config."""
  c = ml_collections.ConfigDict()
  # --- where the data is
  c.source = "tfrecord"        # "tfrecord": shards from `ingest`; "tfds": prepared array_record
  c.paths = ""                 # tfrecord: shard dir with manifest.json | glob | "a,b,c" (gs:// ok)
  c.tfds_name = "eurosat/all"  # tfds: "eurosat/all" or "bigearthnet/all"
  c.tfds_split = "train"       # tfds split, e.g. "train[:90%]"
  c.tfds_data_dir = ""         # tfds data_dir ("" = tfds default)
  # --- what an example holds
  c.bands = ",".join(schema.SPECTRALGPT_BANDS)  # comma list or band set ("spectralgpt"), by name
  c.label_type = "none"        # "none" | "single" (int32 [B]) | "multi" (float32 [B, K])
  c.num_classes = 0            # K for multi-label (19 for BigEarthNet-19)
  c.use_mask = False           # segmentation mask -> "mask" int32 [B, H, W]
  c.use_cube2 = False          # change detection second date -> "cube2"
  c.with_keys = False          # add record keys ("key", str [B]) for debugging/eval
  c.harmonize_offset = True    # apply RADIO_ADD_OFFSET still present in records (baseline>=04.00)
  # --- normalization (official recipes: pretraining minmax; EuroSAT zscore; BEN sentinel_clip)
  c.normalization = "minmax"   # "minmax" | "zscore" | "sentinel_clip" | "none"
  c.stats = "eurosat_official"  # stats registry name (data_pipelines.stats) or "manifest"
  c.minmax_eps = 1e-12
  c.sentinel_clip_quantize = True   # reproduce the official uint8 truncation
  # --- geometry
  c.train = True               # True: random crop + flips; False: deterministic eval path
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
  return c


def _seed(base: int, tag: int, process_index: int) -> int:
  return int(np.random.SeedSequence([base, tag, process_index]).generate_state(1)[0])


def _element_spec(cfg) -> T.ElementSpec:
  return T.ElementSpec(bands=schema.parse_band_list(cfg.bands), label_type=cfg.label_type,
                       num_classes=int(cfg.num_classes), use_mask=bool(cfg.use_mask),
                       use_cube2=bool(cfg.use_cube2), with_keys=bool(cfg.with_keys),
                       harmonize_offset=bool(cfg.harmonize_offset))


def _normalizer(cfg, bands, manifest) -> T.Normalize:
  mean = std = None
  if cfg.normalization in ("zscore", "sentinel_clip"):
    if cfg.stats == "manifest":
      if manifest is None:
        raise ValueError("data.stats='manifest' needs a shard directory with manifest.json")
      st = stats_lib.stats_from_manifest(manifest, cfg.paths)
    else:
      st = stats_lib.get_stats(cfg.stats)
    mean, std = st.for_bands(bands)
  return T.Normalize(cfg.normalization, mean, std, cfg.minmax_eps, cfg.sentinel_clip_quantize)


def check_shard_count(num_shards: int, process_count: int, num_workers: int) -> None:
  """Every host and worker reads whole shards: need shards >= hosts x workers."""
  need = process_count * max(1, num_workers)
  if num_shards < need:
    raise ValueError(f"{num_shards} shard(s) cannot feed {process_count} host(s) x "
                     f"{max(1, num_workers)} worker(s): each reads whole shards, so at least "
                     f"{need} are needed. Re-ingest with --shards >= {need} or lower "
                     "data.num_workers.")
  if num_shards % process_count:
    logging.warning("%d shards over %d hosts: hosts get unequal shard counts (with finite "
                    "num_epochs they run out at different steps)", num_shards, process_count)


class TfdsToElement(grain.transforms.Map):
  """tfds example dict -> element (via the same record layout as the TFRecord path)."""

  def __init__(self, name: str, spec: T.ElementSpec, class_names: tuple[str, ...]):
    self.name, self.spec, self.class_names = name, spec, class_names

  def map(self, ex: dict[str, Any]) -> dict[str, Any]:
    kwargs = {} if self.name.startswith("eurosat") else {"class_names": self.class_names}
    return T.record_to_element(tfds_source.tfds_record(self.name, ex, **kwargs), self.spec)


def _tfrecord_elements(cfg, pi: int, pc: int):
  files, manifest = sources.list_shards(cfg.paths)
  check_shard_count(len(files), pc, cfg.num_workers)
  shuffle = cfg.train and cfg.shuffle
  ds = grain.MapDataset.source(files[pi::pc])
  if shuffle:
    ds = ds.shuffle(seed=_seed(cfg.seed, 0, pi))
  ds = ds.repeat(cfg.num_epochs)
  ds = ds.map(functools.partial(CheckedTFRecordIterDataset, skip_corrupt=cfg.skip_corrupt))
  records = grain.experimental.InterleaveIterDataset(ds, cycle_length=cfg.cycle_length)
  if shuffle and cfg.shuffle_window > 1:
    records = grain.experimental.WindowShuffleIterDataset(
        records, window_size=cfg.shuffle_window, seed=_seed(cfg.seed, 1, pi))
  return records.map(T.ParseExample(_element_spec(cfg))), manifest


def _tfds_elements(cfg, pi: int, pc: int):
  src = tfds_source.open_source(cfg.tfds_name, cfg.tfds_split, cfg.tfds_data_dir or None)
  if len(src) < pc * max(1, cfg.num_workers):
    raise ValueError(f"tfds {cfg.tfds_name}[{cfg.tfds_split}] has {len(src)} examples, fewer "
                     f"than {pc} hosts x {max(1, cfg.num_workers)} workers")
  ds = grain.MapDataset.source(src)[pi::pc]
  if cfg.train and cfg.shuffle:
    ds = ds.shuffle(seed=_seed(cfg.seed, 0, pi))
  ds = ds.repeat(cfg.num_epochs)
  names = tfds_source.class_names_of(cfg.tfds_name, cfg.tfds_data_dir or None)
  ds = ds.map(TfdsToElement(cfg.tfds_name, _element_spec(cfg), names))
  return ds.to_iter_dataset(), None


def make_dataset(config: ml_collections.ConfigDict, *, process_index: int | None = None,
                 process_count: int | None = None) -> grain.IterDataset:
  """The per-host `grain.IterDataset` of batches (see module docstring)."""
  cfg = config
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  if cfg.batch_size % process_count:
    raise ValueError(f"global batch_size {cfg.batch_size} is not divisible by "
                     f"{process_count} processes")
  if cfg.source == "tfrecord":
    ds, manifest = _tfrecord_elements(cfg, process_index, process_count)
  elif cfg.source == "tfds":
    ds, manifest = _tfds_elements(cfg, process_index, process_count)
  else:
    raise ValueError(f"data.source {cfg.source!r} not in ('tfrecord', 'tfds')")
  ds = ds.map(_normalizer(cfg, schema.parse_band_list(cfg.bands), manifest))
  if cfg.train:
    ds = ds.random_map(T.RandomAugment(cfg.image_size, cfg.crop_scale, cfg.crop_ratio,
                                       cfg.interpolation, cfg.antialias, cfg.hflip_prob,
                                       cfg.vflip_prob), seed=_seed(cfg.seed, 2, process_index))
  else:
    ds = ds.map(T.EvalResizeCrop(cfg.image_size, cfg.eval_crop_pct, cfg.interpolation,
                                 cfg.antialias))
  ds = ds.batch(cfg.batch_size // process_count, drop_remainder=cfg.drop_remainder)
  if cfg.num_workers > 0:
    if not flags.FLAGS.is_parsed():   # grain workers read absl flags (see STACK.md)
      flags.FLAGS.mark_as_parsed()
    if cfg.num_workers == 1 and hasattr(ds, "enable_shared_memory_output"):
      ds.enable_shared_memory_output()   # grain does this itself only for >= 2 workers
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=cfg.num_workers, per_worker_buffer_size=cfg.per_worker_buffer_size))
  return ds


def make_pipeline(config: ml_collections.ConfigDict, *, process_index: int | None = None,
                  process_count: int | None = None) -> grain.DatasetIterator:
  """Iterator of host-local batches: {"cube": float32 [b, C, S, S], "label"?, "mask"?, ...}.

  b = config.batch_size // process_count. Checkpointable via get_state/set_state.
  process_index/process_count default to jax.process_index()/jax.process_count().
  """
  return iter(make_dataset(config, process_index=process_index, process_count=process_count))
