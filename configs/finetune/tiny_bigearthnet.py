"""Tiny fine-tune on the six real BigEarthNet patches: tests and the CPU evaluation demo.

  python -m spectralgpt_jax ingest --source bigearthnet \
      --input ../shared/data/bigearthnet_s2_example --out runs/ben_shards --shards 2
  python -m spectralgpt_jax train --config configs/finetune/tiny_bigearthnet.py \
      --workdir runs/ben_tiny_ft --config.data.paths=runs/ben_shards \
      --config.init_from.workdir=runs/demo/run

vit_tiny_patch8_32 at 32 px, BigEarthNet-19 multi-label, the official recipe's loss and
optimizer at a batch and length a 2-core CPU runs in a minute.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, steps=40)
  c = common.finetune_config(model="vit_tiny_patch8_32", num_classes=19, label_type="multi",
                             image_size=32, batch_size=8, blr=0.05, epochs=40, warmup_epochs=4,
                             num_examples=6)
  c.total_steps = a.steps
  c.data.normalization = "minmax"       # as the tiny demo MAE was pretrained
  c.data.shuffle_window = 6
  c.data.cycle_length = 2
  c.checkpoint.every_steps = 20
  c.log.every_steps = 10
  return c
