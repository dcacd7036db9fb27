"""SpectralGPT ViT-L MAE (316M), official recipe at either stage (no official weights exist).

  python -m spectralgpt_jax train --config configs/pretrain/spectralgpt_large.py:stage=1 \
      --workdir gs://BUCKET/runs/large_96 --config.data.paths=gs://BUCKET/fmow_s2
  python -m spectralgpt_jax train --config configs/pretrain/spectralgpt_large.py:stage=2 \
      --workdir gs://BUCKET/runs/large_128 --config.init_from.workdir=gs://BUCKET/runs/large_96 \
      --config.data.paths=gs://BUCKET/bigearthnet_shards

Args: stage=1|2 (96 px fMoW-Sentinel | 128 px BigEarthNet from stage 1), resize (stage 2 pos
tables resized instead of re-initialised). FSDP over all devices, dots remat.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, stage=1, resize=False)
  c = common.official_stage("large", a.stage, pos_embed="resize" if a.resize else "reinit")
  c.model.remat = "dots"
  return c
