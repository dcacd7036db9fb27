"""BigEarthNet-S2 multi-label linear probe (and/or k-NN), 19 or 43 classes.

  python -m spectralgpt_jax evaluate --config configs/eval/bigearthnet_linear.py:classes=19 \
      --workdir runs/eval/ben19 --config.pretrained=runs/plus128 \
      --config.data_root=/data/ben_shards \
      --config.train_split=/data/ben/train.txt --config.test_split=/data/ben/test.txt

Args (after ':'): `classes=19|43` (BigEarthNet-19 nomenclature, as the official fine-tune, or
the 43 CORINE classes); `source=tfrecord|tfds` (shards from `ingest --source bigearthnet
--nomenclature ...`, whose labels keep the nomenclature chosen at ingest, or prepared
`bigearthnet/all`); `protocol=linear|knn|both`; `size=128`. Split lists: one patch id per
line. Recipe (spec section 3): SentinelNormalize clip to [0, 1] with the 12-band fMoW
statistics and the official uint8 truncation; eval Resize(146) + CenterCrop(128).
Metrics: micro/macro mAP over the whole split, and the official per-batch micro mAP.
"""

from configs import common
from configs import evaluation as E


def get_config(arg=None):
  a = common.parse_arg(arg, classes=19, source="tfrecord", protocol="linear", size=128,
                       model="mae_vit_base_patch8_128")
  if a.classes not in (19, 43):
    raise ValueError(f"classes must be 19 or 43, got {a.classes}")
  c = E.eval_config(a.model)
  c.data_root = ""
  c.train_split = ""
  c.test_split = ""

  def data(split):
    d = E.eval_data(label_type="multi", num_classes=a.classes, image_size=a.size,
                    normalization="sentinel_clip", stats="fmow_s2_official")
    d.source = a.source   # "tfrecord" reads data.paths, "tfds" its block data.tfds
    d.paths = c.get_ref("data_root")
    d.tfds.name, d.tfds.split = "bigearthnet/all", "train"
    d.tfds.data_dir = c.get_ref("data_root")
    d.tfds.nomenclature = f"bigearthnet{a.classes}"
    d.split_file = c.get_ref(split)
    return d

  E.add_protocols(c, f"ben{a.classes}", a.protocol, data("train_split"), data("test_split"))
  return c
