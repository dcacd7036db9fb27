"""SpectralGPT stage 1 (official recipe): ViT-B MAE, 96 px fMoW-Sentinel, 200 epochs.

  python -m spectralgpt_jax train --config configs/pretrain/spectralgpt_base_96.py \
      --workdir gs://BUCKET/runs/spectralgpt_base_96 --config.data.paths=gs://BUCKET/fmow_s2

mask 0.9, effective batch 4096, blr 2e-4 (lr 3.2e-3), 20 warmup epochs, AdamW (0.9, 0.95),
wd 0.05, per-image min-max inputs, 12 bands (B10 dropped by name). ~34.8k steps.
Official: 8 GPUs x 16 x accum 32; here one step is the whole 4096 batch (raise
--config.optim.accum_steps if a microbatch of batch_size / (devices x accum) does not fit).
"""

from configs import common


def get_config(arg: str | None = None):
  del arg
  return common.official_stage("base", 1)
