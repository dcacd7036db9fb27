"""EuroSAT (10 classes, single-label) linear probe (and/or k-NN) of a pretrained encoder.

  python -m spectralgpt_jax evaluate --config configs/eval/eurosat_linear.py \
      --workdir runs/eval/eurosat --config.pretrained=runs/base96 \
      --config.data_root=/data/eurosat_shards \
      --config.train_split=/data/eurosat/train_euro_result.txt \
      --config.test_split=/data/eurosat/val_euro_result.txt

Args (after ':'): `source=tfrecord` (shards from `ingest --source geotiff --bands eurosat`,
data_root = their directory) or `source=tfds` (prepared array_record `eurosat/all`,
data_root = tfds data_dir, "" = default); `protocol=linear|knn|both`; `size=128`;
`official_bands` feeds the official recipe's band order after `--dropped_bands 10` on raw
tifs (B11 dropped, B10 kept, B8A last; spec section 3), for parity experiments only.
Split lists are files with one id per line (the official `tif/<Class>/<Class>_N.tif <label>`
lines work as they are); "" keeps every example. Recipe (spec section 3): z-score with the
official EuroSAT statistics, eval Resize(146) + CenterCrop(128), bicubic.
"""

from configs import common
from configs import evaluation as E


def get_config(arg=None):
  a = common.parse_arg(arg, source="tfrecord", protocol="linear", size=128,
                       official_bands=False, model="mae_vit_base_patch8_128")
  c = E.eval_config(a.model)
  c.data_root = ""
  c.train_split = ""
  c.test_split = ""

  def data(split):
    d = E.eval_data(label_type="single", num_classes=10, image_size=a.size,
                    normalization="zscore", stats="eurosat_official",
                    bands="eurosat_official_drop10" if a.official_bands else "spectralgpt")
    d.source = a.source   # "tfrecord" reads data.paths, "tfds" its block data.tfds
    d.paths = c.get_ref("data_root")
    d.tfds.name, d.tfds.split = "eurosat/all", "train"   # one tfds split; lists pick
    d.tfds.data_dir = c.get_ref("data_root")
    d.split_file = c.get_ref(split)
    return d

  E.add_protocols(c, "eurosat", a.protocol, data("train_split"), data("test_split"))
  return c
