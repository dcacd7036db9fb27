"""SpectralGPT ViT-H MAE (644M, the paper's "600M+"), official recipe at either stage.

  python -m spectralgpt_jax train --config configs/pretrain/spectralgpt_huge.py:stage=1 \
      --workdir gs://BUCKET/runs/huge_96 --config.data.paths=gs://BUCKET/fmow_s2

Args: stage=1|2, resize (see spectralgpt_large.py). FSDP over all devices, full remat, bf16
compute: per-device memory of the train step is measured by bench/scale_bench.py. On a host
with less memory raise --config.optim.accum_steps, or add tensor parallelism with
--config.sharding.rules=fsdp_tp --config.mesh.tensor=4.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, stage=1, resize=False)
  c = common.official_stage("huge", a.stage, pos_embed="resize" if a.resize else "reinit")
  c.model.remat = "full"
  c.checkpoint.every_steps = 500
  return c
