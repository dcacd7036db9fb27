"""Tiny real-data evaluation for the CPU (`make demo-eval`): the demo encoder against two
references, on the EuroSAT-MS subset. 9 points, a few minutes.

  python -m spectralgpt_jax sweep --config configs/eval/tiny_sweep.py --workdir runs/demo/eval

Task: EuroSAT-MS land-cover classification (10 classes) on the shipped subset
(../shared/data/eurosat_ms_subset: 20 real 13-band 64 px GeoTIFFs per class, MIT), split per
class 14 train / 6 test by the fixed lists configs/eval/splits/eurosat_subset_{train,test}.txt
(drawn once with numpy default_rng(0), see their header): 140 train, 60 test examples. `make
demo` ingests them into <demo>/eurosat_train and <demo>/eurosat_test (data_pipelines/datasets/eurosat.py)
and pretrains on the 140 training files (with the BigEarthNet patches and OSCD training-city
crops), never on the 60 test files. Inputs: the 12 L2A-named bands, per-image min-max at 64 px,
as the demo model was pretrained.
Protocols on frozen features: ridge linear probe at one fixed L2 strength (1e-2 on
standardised features, chosen before seeing results: nothing is selected on the test split)
and cosine k-NN (k=5, T=0.07).
Rows (`pretrained`): the demo checkpoint; "" = a randomly initialised encoder of the same
architecture; "band_stats" = no encoder, per-band mean and std of the same normalised cube
(spectralgpt_jax/evaluation/band_stats.py). Seeds {0, 1, 2} change the random encoder only
(the demo encoder, band statistics, ridge and k-NN are deterministic: their std is 0).
results.md gives mean ± std over seeds with a bootstrap 95% interval over the 60 test
examples (spectralgpt_jax/sweep/task_tables.py).
Args (after ':'): `shared=../shared` (unused by the points, kept for the Makefile),
`demo=runs/demo` (holds run/, eurosat_train/, eurosat_test/), `size=64` (input pixels).
"""

import os

from configs import common
from configs import evaluation as E
from configs.sweeps import product, sweep

SPLITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits")
L2 = (1e-2,)
SEEDS = (0, 1, 2)


def _args(arg):
  return common.parse_arg(arg, shared="../shared", demo="runs/demo", size=64)


def get_config(arg=None):
  a = _args(arg)
  c = E.eval_config("mae_vit_tiny_patch8_32", pretrained=f"{a.demo}/run")

  def eurosat(split):
    return E.eval_data(label_type="single", num_classes=10, image_size=a.size, batch_size=20,
                       normalization="minmax", paths=f"{a.demo}/eurosat_{split}",
                       split_file=f"{SPLITS}/eurosat_subset_{split}.txt")

  E.add_protocols(c, "eurosat", "both", eurosat("train"), eurosat("test"),
                  linear={"l2_strengths": L2}, knn={"k": 5, "temperature": 0.07})
  return c


def get_sweep(arg=None):
  a = _args(arg)
  return product(sweep("pretrained", [f"{a.demo}/run", "", "band_stats"]),
                 sweep("seed", list(SEEDS)))
