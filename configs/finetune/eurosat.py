"""EuroSAT fine-tuning, the official recipe (spec section 4): vit_base_patch8_128, 10 classes.

  python -m spectralgpt_jax train --config configs/finetune/eurosat.py \
      --workdir runs/eurosat_ft --config.init_from.workdir=runs/spectralgpt_plus_base_128 \
      --config.data.paths=DIR_OF_EUROSAT_SHARDS

Batch 256 (README: 16 x accum 8 x 2 GPUs), blr 2e-4 (lr 2e-4), 150 epochs of the 16,200-image
train list, 20 warmup epochs, wd 0.05, layer decay 0.75, drop path 0.2, smoothing 0.1, mixup 0.8,
cutmix 1.0; z-score inputs with the official EuroSAT statistics, RandomResizedCrop 128 (0.2-1,
bicubic) + flip; eval resize 146, centre crop 128. Arg `paper`: the paper's batch 512 and drop
path 0.1.
"""

from configs import common


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, paper=False)
  c = common.finetune_config(model="vit_base_patch8_128", num_classes=10, label_type="single",
                             batch_size=512 if a.paper else 256, num_examples=16_200)
  if a.paper:
    c.model.drop_path_rate = 0.1
  c.data.stats = "eurosat_official"
  return c
