"""SpectralGPT+ stage 2 (official recipe): ViT-B MAE, 128 px BigEarthNet, from stage 1.

  python -m spectralgpt_jax train --config configs/pretrain/spectralgpt_plus_base_128.py \
      --workdir gs://BUCKET/runs/spectralgpt_plus_base_128 \
      --config.init_from.workdir=gs://BUCKET/runs/spectralgpt_base_96 \
      --config.data.paths=gs://BUCKET/bigearthnet_shards

Continues from stage-1 params only (fresh optimizer, step 0). The spatial position tables grow
from 12x12 to 16x16: re-initialised as the official `--resume_different_size` does, or resized
(bicubic) with the arg `resize` (`...plus_base_128.py:resize`). mask 0.9, batch 4096, blr 1e-4
(lr 1.6e-3), 100 epochs (README text and checkpoint table; its command line says 200), 20
warmup epochs.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, resize=False)
  return common.official_stage("base", 2, pos_embed="resize" if a.resize else "reinit")
