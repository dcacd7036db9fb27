"""BigEarthNet-19 multi-label fine-tuning, the official recipe (spec section 4).

  python -m spectralgpt_jax train --config configs/finetune/bigearthnet.py \
      --workdir runs/ben_ft --config.init_from.workdir=runs/spectralgpt_plus_base_128 \
      --config.data.paths=DIR_OF_BIGEARTHNET_SHARDS --config.num_examples=N

vit_base_patch8_128, 19 classes, MultiLabelSoftMargin, no mixing; batch 256, blr 2e-4, 150
epochs, 20 warmup, wd 0.05, layer decay 0.75, drop path 0.2; inputs SentinelNormalize
(sentinel_clip with the 12-band fMoW statistics, uint8 truncation as the official). The paper
fine-tunes on a 10% subset of the train split (how it was drawn is not published): set
`num_examples` to what your shards hold.
"""

from configs import common


def get_config(arg: str | None = None):
  del arg
  c = common.finetune_config(model="vit_base_patch8_128", num_classes=19, label_type="multi",
                             num_examples=26_970)
  c.data.normalization = "sentinel_clip"
  c.data.stats = "fmow_s2_official"
  return c
