"""SegMunich segmentation (13 classes, spec sections 3-5) with the official SpectralGPT head and
recipe: drop path 0.5, AdamW 1e-4 (0.9, 0.999), wd 1e-5 on every parameter, linear warmup over
15 epochs from factor 1e-3 then poly 0.9 per step, batch 64 (32 x 2 GPUs), 250 epochs,
cross-entropy ignoring unlabelled pixels; `:pangaea` for the PANGAEA protocol instead.

  python -m spectralgpt_jax evaluate --config configs/eval/segmunich.py --workdir runs/eval/segmunich \
      --config.pretrained=runs/spectralgpt_plus_base_128 --config.root=/data/SegMunich

`root` is the dataset in its published layout (dataset/{train,test}.txt, {train,test}/img and
label). The official input is the 10 bands plus their per-pixel mean twice:
`--config.evals.segmunich.train.data.segmunich.channels=official_mean_twice` (and the same on
test_data); the default places the 10 bands by name (data_pipelines/segmunich.py). Metrics:
OA, per-class IoU, mIoU and mean F1, and the official mIoU over all 13 classes including class
0 (`official_miou_all_classes`). Args: `pangaea`, `frozen`, `epochs=250`.
"""

from configs import common
from configs import evaluation as E
from configs.eval.dense_common import dense_test_data

NUM_TRAIN = 3000   # SegMunich train images (128 px), GFM-Bench data card


def get_config(arg=None):
  a = common.parse_arg(arg, pangaea=False, frozen=False, epochs=250)
  c = E.eval_config("seg_vit_base_patch8_128")
  c.root = ""
  t = common.dense_config(model="seg_vit_base_patch8_128",
                          recipe="pangaea" if a.pangaea else "segmunich", source="segmunich",
                          paths=c.get_ref("root"), num_examples=NUM_TRAIN, batch_size=64,
                          epochs=a.epochs, image_size=128, freeze_encoder=a.frozen)
  t.data.segmunich.dataset_split = "train"
  t.data.crops_per_image = 1
  t.checkpoint.every_steps = 1000
  test = dense_test_data(source="segmunich", root=c.get_ref("root"), num_classes=13,
                         segmunich={"dataset_split": "test"})
  c.evals.segmunich = E.dense(t, test, tile_size=128, tile_stride=64)
  return c
