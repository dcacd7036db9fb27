"""Shared building blocks of the configs: argument parsing and the pretraining skeleton.

Configs only compute derived values (no I/O, no JAX): the learning rate follows the official
`lr = blr * effective_batch / 256`, the run length and warmup follow epochs x examples / batch,
and all of them are FieldReferences, so `--config.batch_size=...` or `--config.total_steps=N`
propagate (warmup stays the same fraction of the run).
"""

from __future__ import annotations

import ml_collections

from data_pipelines.config import default_data_config, produces


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """'stage=2,resize' -> {stage: 2, resize: True} over `defaults` (values typed like them)."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (s.strip() for s in (arg or "").split(","))):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"config arg {key!r} unknown; known: {', '.join(defaults)}")
    default = defaults[key]
    if not value:
      out[key] = True
    elif isinstance(default, bool):
      out[key] = value.lower() in ("1", "true", "yes")
    else:
      out[key] = type(default)(value) if default is not None else value
  return out


def kernels_config() -> ml_collections.ConfigDict:
  """Implementation choices (same maths), resolved per compile target outside the model."""
  return ml_collections.ConfigDict({
      "attention": "auto",  # auto | xla | blocked | fused (CPU) | splash (TPU) | cudnn (GPU)
      "matmul": "auto",     # auto | xla | blas: float32 linear layers on one-device CPU
  })


def spectral_config() -> ml_collections.ConfigDict:
  """Band set of the input (spectralgpt_jax/train/band_set.py, docs/sensors.md): sensor "" =
  the model's 12 SpectralGPT bands; else a sensor of data_pipelines.sensors, a comma list of its
  bands ("" = all) and the spectral mode (wavelength needs model.spectral_positions)."""
  return ml_collections.ConfigDict({"sensor": "", "bands": "", "mode": "s2"})


def pretrain_config(*, model: str, image_size: int, batch_size: int, blr: float, epochs: float,
                    warmup_epochs: float, num_examples: int | None = None,
                    ) -> ml_collections.ConfigDict:
  """The full pretraining config with every field and its default (see docs/training.md).

  `num_examples=None` (the default) means: the number of records the shard manifest lists, read
  when training starts (train/run_length.py logs which number it used)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  # --- run length: total_steps = epochs x num_examples / batch_size (override either)
  # examples per epoch; None = the shard manifest's num_records (read when training starts)
  c.num_examples = ml_collections.FieldReference(num_examples, field_type=int)
  c.epochs = epochs
  c.batch_size = batch_size              # GLOBAL batch per optimizer step (all hosts, all micro)
  c.total_steps = c.get_ref("epochs") * c.get_ref("num_examples") // c.get_ref("batch_size")
  c.image_size = image_size              # feeds model.img_size and data.image_size
  c.num_dates = 1                        # dates per example; feeds model and data

  c.model = ml_collections.ConfigDict()
  c.model.name = model                   # spectralgpt_jax.models.VARIANTS key
  c.model.img_size = c.get_ref("image_size")
  c.model.num_dates = c.get_ref("num_dates")
  c.model.dtype = "bfloat16"             # compute dtype; params stay float32 (official: AMP fp16)
  c.model.scan = True                    # one compiled block per stack
  c.model.remat = "none"                 # none | full | dots | dots_no_batch
  c.model.spectral_positions = "table"   # table | wavelength (any band set: docs/sensors.md)

  c.kernels = kernels_config()

  c.data = default_data_config()
  c.data.batch_size = c.get_ref("batch_size")
  c.data.image_size = c.get_ref("image_size")
  c.data.num_dates = c.get_ref("num_dates")
  c.data.normalization = "minmax"        # official pretraining: per-image per-band min-max
  c.data.seed = c.get_ref("seed")

  c.spectral = spectral_config()

  c.masking = ml_collections.ConfigDict({"ratio": 0.9})
  c.loss = ml_collections.ConfigDict({"mse_weight": 1.0, "spectral_weight": 1.0,
                                      "norm_pix": False})

  c.optim = ml_collections.ConfigDict()
  c.optim.blr = blr
  c.optim.lr = c.optim.get_ref("blr") * c.get_ref("batch_size") / 256
  c.optim.min_lr = 0.0
  c.warmup_epochs = warmup_epochs
  c.optim.warmup_steps = c.get_ref("total_steps") * c.get_ref("warmup_epochs") // c.get_ref(
      "epochs")
  c.optim.b1 = 0.9
  c.optim.b2 = 0.95
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.05            # on every param with >= 2 dims (incl. pos embeds, mask)
  c.optim.exclude_pos_and_mask = False   # True: no decay on pos embeds and mask_token
  c.optim.clip_grad_norm = 0.0           # 0 = off (official)
  c.optim.accum_steps = 1                # microbatches per step (official GPUs: 32)

  c.mesh = ml_collections.ConfigDict({"data": 1, "fsdp": -1, "tensor": 1})
  c.sharding = ml_collections.ConfigDict({"rules": "fsdp", "overrides": ()})

  c.checkpoint = ml_collections.ConfigDict({"every_steps": 1000, "max_to_keep": 3,
                                            "async_save": True})
  # A damaged latest checkpoint on resume: "fallback" (newest intact step; the damaged one is
  # moved to checkpoints.damaged/) or "fail".
  c.checkpoint.on_corrupt = "fallback"
  # Resuming with a changed schedule (total_steps, lr, min_lr, warmup) is announced; True keeps
  # the schedule recorded in the checkpoint instead of the config's.
  c.checkpoint.keep_schedule = False
  c.init_from = ml_collections.ConfigDict()
  c.init_from.workdir = ""               # another run's workdir: load its params only
  c.init_from.step = -1                  # -1 = its latest checkpoint
  c.init_from.pos_embed = "reinit"       # reinit (official) | resize, for changed grids

  c.log = ml_collections.ConfigDict()
  c.log.every_steps = 50
  c.log.panel_every_steps = 2000         # 0 = no reconstruction panels
  c.log.panel_examples = 4
  c.log.peak_tflops_per_device = 0.0     # 0 = from the device kind (MFU omitted if unknown)
  c.max_nonfinite_streak = 20            # consecutive skipped steps before stopping
  return c


def official_stage(model_size: str, stage: int, pos_embed: str = "reinit",
                   ) -> ml_collections.ConfigDict:
  """Spec section 4: stage 1 fMoW-Sentinel 96 px; stage 2 BigEarthNet 128 px from stage 1."""
  if stage not in (1, 2):
    raise ValueError(f"stage must be 1 or 2, got {stage}")
  size = 96 if stage == 1 else 128
  c = pretrain_config(
      model=f"mae_vit_{model_size}_patch8_{size}", image_size=size, batch_size=4096,
      blr=2e-4 if stage == 1 else 1e-4, epochs=200 if stage == 1 else 100, warmup_epochs=20,
      # Stage 1 is the fMoW-Sentinel recipe: its train split (712,874 images, SatMAE paper;
      # UNVERIFIED here). Stage 2: the official BigEarthNet pretraining list is not public, so
      # the number comes from your shards' manifest (BigEarthNet-19 train: 269,695).
      # --config.num_examples=N overrides either.
      num_examples=712_874 if stage == 1 else None)
  if stage == 2:
    c.init_from.pos_embed = pos_embed
  return c


def finetune_config(*, model: str, num_classes: int, label_type: str, image_size: int = 128,
                    batch_size: int = 256, blr: float = 2e-4, epochs: float = 150,
                    warmup_epochs: float = 20, num_examples: int | None = None,
                    ) -> ml_collections.ConfigDict:
  """Fine-tuning a classifier with the official recipe (spec section 4), on the same training
  machinery as pretraining (`train`): AdamW (0.9, 0.999), wd 0.05 without position tables,
  layer-wise lr decay 0.75, drop path 0.2, warmup + half-cosine per step, lr = blr x batch /
  256; single-label: label smoothing 0.1, mixup 0.8 / cutmix 1.0 (switch 0.5); multi-label:
  MultiLabelSoftMargin, no mixing. Start from pretrained weights with
  `--config.init_from.workdir=RUN` (the MAE's encoder; the head starts fresh)."""
  c = pretrain_config(model=model, image_size=image_size, batch_size=batch_size, blr=blr,
                      epochs=epochs, warmup_epochs=warmup_epochs, num_examples=num_examples)
  del c.masking, c.loss
  c.model.num_classes = num_classes
  c.model.dtype = "float32"              # official: AMP fp16; bf16 here is an override away
  c.model.drop_path_rate = 0.2           # README command (paper: 0.1)
  c.optim.b2 = 0.999
  c.optim.min_lr = 1e-14                 # official default
  c.optim.exclude_pos_and_mask = True    # no decay on position tables (and 1-D params)
  c.optim.layer_decay = 0.75
  c.finetune = ml_collections.ConfigDict()
  c.finetune.smoothing = 0.1 if label_type == "single" else 0.0
  c.finetune.mixup = 0.8 if label_type == "single" else 0.0     # alpha; 0 = off
  c.finetune.cutmix = 1.0 if label_type == "single" else 0.0    # alpha; 0 = off
  c.finetune.switch_prob = 0.5           # cutmix instead of mixup with this probability
  c.finetune.mix_prob = 1.0              # mixing applied to a batch with this probability
  c.data.label_type = label_type         # "single" | "multi"
  c.data.num_classes = num_classes
  c.data.normalization = "zscore"        # official EuroSAT; BigEarthNet: sentinel_clip
  c.data.crop_scale = (0.2, 1.0)         # RandomResizedCrop, bicubic, + horizontal flip
  c.eval_every_steps = 0                 # evaluation hook (0: at the end only)
  c.log.panel_every_steps = 0
  return c


DENSE_RECIPES = ("segmunich", "oscd", "pangaea")


def dense_config(*, model: str, recipe: str, source: str, paths: str, num_examples: int,
                 batch_size: int, epochs: float, image_size: int = 128,
                 freeze_encoder: bool = False) -> ml_collections.ConfigDict:
  """Training a segmentation / change-detection model (spec sections 4-5) on the training
  machinery (`train`), recipes:
    segmunich  drop path 0.5, AdamW 1e-4 (0.9, 0.999), wd 1e-5 on every parameter, linear
               warmup over 15 epochs from factor 1e-3 then poly 0.9 per step, cross-entropy
               with ignore index
    oscd       AdamW 1e-4, wd 1e-5 on every parameter, ExponentialLR 0.95 per epoch, drop path
               0.5, NLL weighted [10 x 2p, 2 (1 - p)] by the training change fraction p
    pangaea    frozen encoder, UPerNet 512 over blocks 3, 5, 7, 11, AdamW 1e-4, wd 0.05,
               lr x0.1 at 60 % and 90 % of the run
  `num_examples` = training crops per epoch (images x data.crops_per_image).
  """
  if recipe not in DENSE_RECIPES:
    raise ValueError(f"recipe {recipe!r} not in {DENSE_RECIPES}")
  c = pretrain_config(model=model, image_size=image_size, batch_size=batch_size, blr=0.0,
                      epochs=epochs, warmup_epochs=0, num_examples=num_examples)
  del c.masking, c.loss
  c.model.dtype = "float32"
  c.model.scan = False
  c.model.drop_path_rate = 0.0 if recipe == "pangaea" else 0.5
  c.model.head = "pangaea" if recipe == "pangaea" else "official"
  if recipe == "pangaea":
    c.model.head_channels = 512
    c.model.feature_layers = (3, 5, 7, 11)
  c.model.freeze_encoder = freeze_encoder or recipe == "pangaea"
  if recipe == "oscd":
    c.model.pyramid_dropout = 0.0        # the official change model's pyramid has no dropout
  del c.optim.blr
  c.optim.lr = 1e-4
  c.optim.b2 = 0.999
  c.optim.weight_decay = 0.05 if recipe == "pangaea" else 1e-5
  c.optim.decay_all = recipe != "pangaea"   # torch AdamW(model.parameters()): every parameter
  c.steps_per_epoch = c.get_ref("num_examples") // c.get_ref("batch_size")
  if recipe == "segmunich":
    c.optim.schedule = "warmup_poly"
    c.warmup_epochs = 15
    c.optim.warmup_factor = 1e-3
    c.optim.poly_power = 0.9
  elif recipe == "oscd":
    c.optim.schedule = "exponential"
    c.optim.gamma = 0.95
    c.optim.steps_per_epoch = c.get_ref("steps_per_epoch")
  else:
    c.optim.schedule = "steps"
    c.optim.milestones = (0.6, 0.9)
    c.optim.decay_factor = 0.1
  c.dense = ml_collections.ConfigDict()
  c.dense.oscd_class_weights = recipe == "oscd"   # weights from the training change fraction
  c.dense.class_weights = ()                       # filled by the evaluator when the above
  c.data.source = source
  c.data.paths = paths
  c.data.use_mask = True
  c.data.use_cube2 = produces(source, "cube2")
  c.data.rot90 = recipe != "pangaea"
  c.data.vflip_prob = 0.0
  c.eval_every_steps = 0
  c.log.panel_every_steps = 0
  return c
