"""The input pipeline, built from `config.data` (fields: `config.default_data_config`).

`make_iterator` is the training loop's entry: `source="synthetic"` (data_pipelines.synthetic),
or the grain pipeline `make_pipeline`. `data.source` names a source of
`data_pipelines.datasets`; its `kind` decides the reading path below.

TFRecord shards (written by `ingest`), per host:
  shards verified against the manifest (`sources.verify_shards`: sizes, record counts; strict
  raises naming the shard, data.skip_corrupt drops bad shards and logs them) -> in skip mode,
  at least one record must pass its CRCs (else an error, instead of an endless empty pass)
  -> shard files[host::hosts] -> shuffle shard order per epoch (seeded) -> repeat(num_epochs)
  -> one CRC-checked TFRecord reader per shard -> interleave(cycle_length)
  -> window shuffle (seeded) -> parse + select bands by name -> normalize
  -> train: RandomResizedCrop + flips | eval: Resize + CenterCrop
  -> batch(global_batch / hosts) -> multiprocess prefetch(num_workers)
ArrayRecord shards (manifest "format", data_pipelines.record_formats), per host: shards
  verified as above -> every record of every shard, random access -> (split filter) -> global
  shuffle per epoch (grain's index shuffle: a full permutation of all records, seeded alike on
  every host, a new one each epoch) -> repeat(num_epochs) -> host slice [host::hosts] of that
  sequence (disjoint, together every record once per epoch) -> parse -> same tail.
tfds (array_record, random access): records[host::hosts] -> global shuffle -> same tail.
In-memory record sources (kind "records": "eurosat", "sen1floods11_tiles"): the source's
`records(cfg)` -> split filter -> records[host::hosts] -> shuffle -> same tail.
Dense tasks ("oscd", "sen1floods11_seg", "segmunich"; data_pipelines.dense), training only:
  whole images read into memory (normalised whole unless data.minmax_scope="patch")
  -> each listed crops_per_image times -> images[host::hosts] -> shuffle (seeded) -> repeat
  -> random size x size crop + flips (+ rot90), alike on cube, cube2 and mask
  -> (patch scope: normalise each crop) -> same batching tail (records of shards take the same
  windows with data.crop="window"); batches {"cube", "mask" int32
  [b, S, S] (-1 ignored), "cube2" (oscd), "key" (with_keys)}. Evaluation reads whole images
  with `dense.load_dense_images`.

The returned iterator yields host-local numpy batches {"cube": float32 [b, C, S, S] or, with
num_dates = T > 1, [b, T, C, S, S], ...} and is checkpointable (`get_state`/`set_state`, or
`spectralgpt_jax.checkpoints.save`). `data_meta` is what a checkpoint stores about the inputs
(bands, normalization record).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import grain
import ml_collections
from absl import logging

from data_pipelines import absl_flags
from data_pipelines import config as data_config
from data_pipelines import datasets
from data_pipelines import dense
from data_pipelines import example_codec
from data_pipelines import normalization
from data_pipelines import order
from data_pipelines import record_formats
from data_pipelines import schema
from data_pipelines import sources
from data_pipelines import splits
from data_pipelines import synthetic
from data_pipelines import tfds_source
from data_pipelines import transforms as T
from data_pipelines.errors import ShardMismatchError
from data_pipelines.tfrecord import CheckedTFRecordIterDataset


def _element_spec(cfg) -> T.ElementSpec:
  return T.ElementSpec(bands=schema.parse_band_list(cfg.bands), num_dates=int(cfg.num_dates),
                       label_type=cfg.label_type,
                       num_classes=int(cfg.num_classes), use_mask=bool(cfg.use_mask),
                       use_cube2=bool(cfg.use_cube2), with_keys=bool(cfg.with_keys),
                       harmonize_offset=bool(cfg.harmonize_offset))


def _normalizer(cfg, manifest) -> T.Normalize:
  norm = normalization.norm_record(cfg, manifest)
  return T.Normalize(cfg.normalization, norm.get("mean"), norm.get("std"), cfg.minmax_eps,
                     cfg.sentinel_clip_quantize)


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

  def __init__(self, name: str, spec: T.ElementSpec, class_names: tuple[str, ...],
               nomenclature: str = "bigearthnet19"):
    self.name, self.spec, self.class_names = name, spec, class_names
    self.nomenclature = nomenclature

  def map(self, ex: dict[str, Any]) -> dict[str, Any]:
    kwargs = ({} if self.name.startswith("eurosat") else
              {"class_names": self.class_names, "nomenclature": self.nomenclature})
    return T.record_to_element(tfds_source.tfds_record(self.name, ex, **kwargs), self.spec)


class RecordToElement(grain.transforms.Map):
  """In-memory record dict -> element."""

  def __init__(self, spec: T.ElementSpec):
    self.spec = spec

  def map(self, rec: dict[str, Any]) -> dict[str, Any]:
    return T.record_to_element(rec, self.spec)


class _KeyInSplit(grain.transforms.Filter):
  """Keeps serialized records whose key is in the split (decodes only the key)."""

  def __init__(self, ids: frozenset[str]):
    self.pred = splits.InSplit(ids)

  def filter(self, data: bytes) -> bool:
    return self.pred(example_codec.decode_record(data, frozenset({"key"})))


class _Subset:
  """The examples of a random-access source that a predicate keeps (indices found once)."""

  def __init__(self, src, keep):
    self.src, self.index = src, [i for i in range(len(src)) if keep(src[i])]

  def __len__(self) -> int:
    return len(self.index)

  def __getitem__(self, i: int):
    return self.src[self.index[i]]


def _split_ids(cfg) -> frozenset[str] | None:
  return splits.read_split_file(cfg.split_file) if cfg.get("split_file") else None


def _open_shard(path: str, *, skip_corrupt: bool, expected: dict[str, tuple[int, int]]):
  return CheckedTFRecordIterDataset(path, skip_corrupt=skip_corrupt, expected=expected.get(path))


def verified_shards(cfg) -> tuple[list[str], dict[str, Any] | None, list[str]]:
  """(shards to read, manifest, skipped "<path>: <problem>" lines) of a shards config."""
  skip = bool(cfg.skip_corrupt)
  files, manifest = sources.list_shards(cfg.paths, allow_missing=True)
  files, skipped = sources.verify_shards(files, manifest, skip=skip)
  where = str(cfg.paths)
  if not files:
    raise ShardMismatchError(where, f"no readable shard ({len(skipped)} skipped: "
                             f"{'; '.join(skipped[:3])})")
  if (skip and sources.record_format(files, manifest) == record_formats.TFRECORD
      and sources.first_good_record(files) is None):
    raise ShardMismatchError(where, f"skip mode read all {len(files)} shard(s) and found no "
                             "record whose CRCs pass; nothing to train on")
  return files, manifest, skipped


def _shard_elements(cfg, pi: int, pc: int):
  """Shards written by `ingest`: the reader the manifest's record format asks for."""
  files, manifest, skipped = verified_shards(cfg)
  if sources.record_format(files, manifest) == record_formats.ARRAY_RECORD:
    return _array_record_elements(cfg, pi, pc, files, manifest), manifest, skipped
  return _tfrecord_elements(cfg, pi, pc, files, manifest), manifest, skipped


def _array_record_elements(cfg, pi: int, pc: int, files: list[str], manifest):
  expected = sources.expected_sizes(files, manifest)
  counts = [expected[f][1] for f in files] if len(expected) == len(files) else None
  src = record_formats.ArrayRecordShards(files, counts, skip_corrupt=bool(cfg.skip_corrupt))
  if cfg.skip_corrupt and not any(src[i] for i in range(len(src))):  # stops at a good one
    raise ShardMismatchError(str(cfg.paths), f"skip mode read all {len(src)} records and "
                             "found none whose chunk hashes pass; nothing to train on")
  ids = _split_ids(cfg)
  if ids is not None:   # one pass decoding the keys, then random access
    in_split = _KeyInSplit(ids)
    src = _Subset(src, lambda data: bool(data) and in_split.filter(data))
  if len(src) < pc:
    raise ValueError(f"{cfg.paths}: {len(src)} records for {pc} hosts")
  seed = cfg.seed if cfg.train and cfg.shuffle else None
  ds = order.global_shuffle(grain.MapDataset.source(src), seed, cfg.num_epochs, pi, pc)
  if cfg.skip_corrupt:
    ds = ds.filter(bool)   # corrupt records come back empty (logged)
  return ds.map(T.ParseExample(_element_spec(cfg))).to_iter_dataset()


def _tfrecord_elements(cfg, pi: int, pc: int, files: list[str], manifest):
  check_shard_count(len(files), pc, cfg.num_workers)
  expected = sources.expected_sizes(files, manifest)
  shuffle = cfg.train and cfg.shuffle
  ds = grain.MapDataset.source(files[pi::pc])
  if shuffle:
    ds = ds.shuffle(seed=order.derive_seed(cfg.seed, 0, pi))
  ds = ds.repeat(cfg.num_epochs)
  ds = ds.map(functools.partial(_open_shard, skip_corrupt=cfg.skip_corrupt, expected=expected))
  records = grain.experimental.InterleaveIterDataset(ds, cycle_length=cfg.cycle_length)
  ids = _split_ids(cfg)
  if ids is not None:
    records = records.filter(_KeyInSplit(ids))
  if shuffle and cfg.shuffle_window > 1:
    records = grain.experimental.WindowShuffleIterDataset(
        records, window_size=cfg.shuffle_window, seed=order.derive_seed(cfg.seed, 1, pi))
  return records.map(T.ParseExample(_element_spec(cfg)))


def _in_memory_elements(records: list[dict[str, Any]], cfg, pi: int, pc: int, what: str):
  """Small record lists (Sen1Floods11 tiles): split filter, host slice, shuffle, repeat."""
  ids = _split_ids(cfg)
  if ids is not None:
    records = [r for r in records if splits.InSplit(ids)(r)]
  if len(records) < pc:
    raise ValueError(f"{what}: {len(records)} examples for {pc} hosts")
  ds = grain.MapDataset.source(records)[pi::pc]
  if cfg.train and cfg.shuffle:
    ds = ds.shuffle(seed=order.derive_seed(cfg.seed, 0, pi))
  ds = ds.repeat(cfg.num_epochs).map(RecordToElement(_element_spec(cfg)))
  return ds.to_iter_dataset(), None, []


def _record_elements(cfg, pi: int, pc: int):
  """A source of kind "records" (e.g. eurosat, sen1floods11_tiles), read into memory."""
  records = datasets.get(cfg.source).records(cfg)
  return _in_memory_elements(records, cfg, pi, pc, f"{cfg.source} at {cfg.paths}")


def _dense_elements(cfg, pi: int, pc: int):
  """Whole images in memory (data_pipelines.dense), each listed crops_per_image times per
  epoch -> host slice -> shuffle -> repeat -> element. Scope "image" normalises here, once."""
  if not cfg.train:
    raise ValueError(f"data.source={cfg.source!r} trains on random crops (data.train=True); "
                     "evaluation reads whole images with data_pipelines.dense.load_dense_images")
  records = dense.dense_records(cfg)
  if cfg.minmax_scope == "image":
    records = dense.normalize_images(records, cfg)
  if len(records) < pc:
    raise ValueError(f"{cfg.source} at {cfg.paths}: {len(records)} images for {pc} hosts")
  records = records[pi::pc]
  spec = dataclasses.replace(_element_spec(cfg), use_mask=True,
                             use_cube2="cube2" in dense.dense_source(cfg.source).record_keys)
  listing = [r for r in records
             for _ in range(dense.crops_per_image(r, int(cfg.image_size),
                                                  int(cfg.crops_per_image)))]
  ds = grain.MapDataset.source(listing)
  if cfg.shuffle:
    ds = ds.shuffle(seed=order.derive_seed(cfg.seed, 0, pi))
  ds = ds.repeat(cfg.num_epochs).map(RecordToElement(spec))
  return ds.to_iter_dataset()


def _window_geometry(ds, cfg, manifest, process_index: int, normalized: bool):
  """Random size x size windows + flips (+ rot90), alike on cube, cube2 and mask. The
  normalisation runs on whole images before (minmax_scope "image", unless `normalized`
  already) or on each window after ("patch")."""
  norm = _normalizer(cfg, manifest)
  if cfg.minmax_scope == "image" and not normalized:
    ds = ds.map(norm)
  ds = ds.random_map(T.RandomDenseCrop(cfg.image_size, cfg.hflip_prob, cfg.vflip_prob,
                                       cfg.rot90),
                     seed=order.derive_seed(cfg.seed, 2, process_index))
  if cfg.minmax_scope == "patch":
    ds = ds.map(norm)
  return ds


def _tfds_elements(cfg, pi: int, pc: int):
  t = cfg.tfds
  src = tfds_source.open_source(t.name, t.split, t.data_dir or None)
  if len(src) < pc * max(1, cfg.num_workers):
    raise ValueError(f"tfds {t.name}[{t.split}] has {len(src)} examples, fewer "
                     f"than {pc} hosts x {max(1, cfg.num_workers)} workers")
  ids = _split_ids(cfg)
  if ids is not None:   # one pass over the examples' file names, then random access
    src = _Subset(src, splits.InSplit(ids))
  ds = grain.MapDataset.source(src)[pi::pc]
  if cfg.train and cfg.shuffle:
    ds = ds.shuffle(seed=order.derive_seed(cfg.seed, 0, pi))
  ds = ds.repeat(cfg.num_epochs)
  names = tfds_source.class_names_of(t.name, t.data_dir or None)
  ds = ds.map(TfdsToElement(t.name, _element_spec(cfg), names, t.nomenclature))
  return ds.to_iter_dataset(), None, []


def _processes(cfg, process_index: int | None, process_count: int | None) -> tuple[int, int]:
  """(process_index, process_count), defaulting to jax's, checked against the batch size."""
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  if cfg.batch_size % process_count:
    raise ValueError(f"global data.batch_size {cfg.batch_size} is not divisible by "
                     f"{process_count} processes")
  return process_index, process_count


def make_dataset(config: ml_collections.ConfigDict, *, process_index: int | None = None,
                 process_count: int | None = None) -> grain.IterDataset:
  """The per-host `grain.IterDataset` of batches (see module docstring)."""
  ds, _ = _make_dataset(config, process_index, process_count)
  return ds


def _geometry(ds, cfg, manifest, process_index: int):
  """Normalise, then train: RandomResizedCrop + flips (or random windows, data.crop="window")
  | eval: Resize + CenterCrop."""
  if cfg.crop not in T.CROPS:
    raise ValueError(f"data.crop {cfg.crop!r} not in {T.CROPS}")
  if cfg.train and cfg.crop == "window":
    return _window_geometry(ds, cfg, manifest, process_index, normalized=False)
  ds = ds.map(_normalizer(cfg, manifest))
  if cfg.train:
    return ds.random_map(T.RandomAugment(cfg.image_size, cfg.crop_scale, cfg.crop_ratio,
                                         cfg.interpolation, cfg.antialias, cfg.hflip_prob,
                                         cfg.vflip_prob),
                         seed=order.derive_seed(cfg.seed, 2, process_index))
  return ds.map(T.EvalResizeCrop(cfg.image_size, cfg.eval_crop_pct, cfg.interpolation,
                                 cfg.antialias))


# How each kind of source becomes elements: (cfg, process_index, process_count) ->
# (element dataset, manifest or None, skipped shard lines). Dense sources: `_dense_elements`.
_ELEMENTS = {"shards": _shard_elements, "tfds": _tfds_elements, "records": _record_elements}


def _make_dataset(cfg, process_index, process_count) -> tuple[grain.IterDataset, list[str]]:
  process_index, process_count = _processes(cfg, process_index, process_count)
  skipped: list[str] = []
  data_config.check_data_config(cfg)
  kind = datasets.get(cfg.source).kind
  if kind == "dense":
    ds = _window_geometry(_dense_elements(cfg, process_index, process_count), cfg, None,
                          process_index, normalized=True)
  elif kind in _ELEMENTS:
    ds, manifest, skipped = _ELEMENTS[kind](cfg, process_index, process_count)
    ds = _geometry(ds, cfg, manifest, process_index)
  else:
    readable = [n for n in datasets.NAMES if datasets.get(n).kind in (*_ELEMENTS, "dense")]
    raise ValueError(f"data.source {cfg.source!r} (kind {kind!r}) is not read by the grain "
                     f"pipeline; it reads {readable} ('synthetic' goes through make_iterator, "
                     "'ingest' sources become 'tfrecord' shards)")
  ds = ds.batch(cfg.batch_size // process_count, drop_remainder=cfg.drop_remainder)
  if cfg.num_workers > 0:
    absl_flags.ensure_parsed()   # grain workers read absl flags (see STACK.md)
    if cfg.num_workers == 1 and hasattr(ds, "enable_shared_memory_output"):
      ds.enable_shared_memory_output()   # grain does this itself only for >= 2 workers
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=cfg.num_workers, per_worker_buffer_size=cfg.per_worker_buffer_size))
  return ds, skipped


def make_pipeline(config: ml_collections.ConfigDict, *, process_index: int | None = None,
                  process_count: int | None = None) -> grain.DatasetIterator:
  """Iterator of host-local batches: {"cube": float32 [b, C, S, S], "label"?, "mask"?, ...}.

  b = config.batch_size // process_count. Checkpointable via get_state/set_state.
  process_index/process_count default to jax.process_index()/jax.process_count().
  The shards skip mode dropped are in `skipped_inputs(iterator)`.
  """
  ds, skipped = _make_dataset(config, process_index, process_count)
  it = iter(ds)
  try:
    it.skipped_inputs = list(skipped)
  except AttributeError:  # an iterator type without a __dict__
    pass
  return it


def skipped_inputs(data_iter) -> list[str]:
  """"<shard>: <problem>" for each shard the pipeline skipped (skip mode), [] otherwise."""
  return list(getattr(data_iter, "skipped_inputs", []))


def make_iterator(data_cfg: ml_collections.ConfigDict, *, process_index: int | None = None,
                  process_count: int | None = None) -> grain.DatasetIterator:
  """Host-local batches of any `data.source` ("synthetic", "tfrecord", "tfds", "eurosat",
  "sen1floods11_tiles", and for training the dense "oscd", "sen1floods11_seg", "segmunich").

  {"cube": float32 [b, C, S, S] (or [b, T, C, S, S]), ...}, b = batch_size // process_count;
  checkpointable via get_state/set_state.
  """
  data_config.check_data_config(data_cfg)
  if datasets.get(data_cfg.source).kind != "generated":
    return make_pipeline(data_cfg, process_index=process_index, process_count=process_count)
  process_index, process_count = _processes(data_cfg, process_index, process_count)
  return iter(synthetic.make_dataset(
      len(schema.parse_band_list(data_cfg.bands)), int(data_cfg.image_size),
      int(data_cfg.batch_size), int(data_cfg.seed), process_index, process_count,
      int(data_cfg.num_dates)))


def data_meta(data_cfg: ml_collections.ConfigDict) -> dict[str, Any]:
  """{"bands": [...], "normalization": {...}} for the checkpoint meta (what inference needs to
  prepare inputs the way training saw them; see `normalization.norm_record`).

  Statistics that cannot be resolved are recorded as "error", not raised (the run checks).
  """
  bands = list(schema.parse_band_list(data_cfg.bands))
  try:
    manifest = None
    if data_cfg.stats == "manifest" and data_cfg.normalization in ("zscore", "sentinel_clip"):
      manifest = sources.list_shards(data_cfg.paths)[1]
    norm = normalization.norm_record(data_cfg, manifest)
  except (OSError, ValueError, KeyError) as e:
    norm = {"mode": data_cfg.normalization, "image_size": int(data_cfg.image_size),
            "stats": data_cfg.stats, "quantize": bool(data_cfg.sentinel_clip_quantize),
            "error": str(e)}
  return {"bands": bands, "normalization": norm}
