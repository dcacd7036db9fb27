"""`default_data_config()`: every `config.data` field with its default.

Light on purpose: configs import this module, so it imports only ml_collections and the band
names (no grain, tfds, jax or numpy). The pipeline that reads these fields is `pipeline.py`.
"""

from __future__ import annotations

import ml_collections

from data_pipelines import schema

SOURCES = ("tfrecord", "tfds", "sen1floods11_tiles", "synthetic", "oscd", "sen1floods11_seg",
           "segmunich")


def default_data_config() -> ml_collections.ConfigDict:
  """Every data field with its default; embed as `config.data` in a training config."""
  c = ml_collections.ConfigDict()
  # --- where the data is
  c.source = "tfrecord"        # "tfrecord": shards from `ingest`; "tfds": prepared array_record;
  #                              "sen1floods11_tiles": Sen1Floods11 chips cut into labelled
  #                              tiles (data_pipelines.sen1floods11); "synthetic": generated
  #                              cubes (data_pipelines.synthetic), no files; dense tasks
  #                              (data_pipelines.dense, whole images in memory, random crops):
  #                              "oscd" (change detection), "sen1floods11_seg", "segmunich"
  c.paths = ""                 # tfrecord: shard dir with manifest.json | glob | "a,b,c" (gs:// ok);
  #                              sen1floods11_tiles / _seg: the chip dir (S2Hand/, LabelHand/);
  #                              oscd, segmunich: the dataset root in its published layout
  c.split_file = ""            # keep only the ids listed (one per line; data_pipelines.splits)
  c.tfds_name = "eurosat/all"  # tfds: "eurosat/all" or "bigearthnet/all"
  c.tfds_split = "train"       # tfds split, e.g. "train[:90%]"
  c.tfds_data_dir = ""         # tfds data_dir ("" = tfds default)
  c.nomenclature = "bigearthnet19"  # tfds bigearthnet labels: "bigearthnet19" | "bigearthnet43"
  #                                   (shards keep the nomenclature chosen at ingest)
  # --- sen1floods11_tiles: label = number of thresholds the tile's water share exceeds
  c.tile_size = 128            # 512 px chips -> 16 tiles
  c.water_share_thresholds = (0.25,)  # (0.25,): 2 classes; (0.1, 0.5): 3 share bins
  c.verify_sha256 = False      # check SHA256SUMS.txt of the chip dir (oscd: root) before reading
  # --- dense tasks (oscd, sen1floods11_seg, segmunich): masks int32, -1 = ignored pixel
  c.cities = ""                # oscd: comma list of cities ("" = dataset_split's, else all)
  c.dataset_split = ""         # the dataset's own split: oscd "train" | "test" (its train.txt /
  #                              test.txt; "" = every city), segmunich "train" | "test"
  #                              ("" = "train")
  c.label_convention = "auto"  # oscd change maps: "auto" (from the values found) | "one_two"
  #                              (1 no change, 2 change: the shipped tifs) | "zero_one" (README)
  c.band_resampling = "bicubic"  # oscd: upsampling of 20 m / 60 m bands onto the 10 m grid
  c.segmunich_channels = "by_name"  # "by_name": the 10 bands in their model slots, B08 and B09
  #                       filled from the nearest band (B8A); "official_mean_twice": the 10
  #                       bands then their per-pixel mean twice, fed positionally (official)
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
  return c
