"""Other sensors' band sets from one pretrained encoder: Landsat-like, HLS-like and 4-band
RGBN subsets of the real Sentinel-2 bands, fed (a) as the full 12 S2 bands, (b) through
wavelength-aware spectral positions, (c) through spectral resampling onto the S2 bands with
the uncovered groups dropped as masked tokens, (d) zero-filled as the benchmark harnesses do
(spectralgpt_jax/evaluation/band_input.py, data_pipelines/spectral_resample.py). 30 points:
(a) + 3 subsets x (b, c, d), 3 seeds each; ~10 minutes on 2 CPU cores with the demo encoder.

  make demo    # runs/demo/run: the tiny demo encoder
  python -m spectralgpt_jax sweep --config configs/eval/sensor_sweep.py --workdir runs/demo/sensors

Tasks, both on frozen features:
  eurosat_linear   EuroSAT-MS subset (../shared/data/eurosat_ms_subset, read by the `eurosat`
                   source) split 140 / 60 by configs/eval/splits/eurosat_subset_*.txt; ridge
                   probe at one fixed strength (1e-2, chosen before any result), accuracy with
                   its 95% bootstrap interval over the 60 test images.
  oscd_change      OSCD change probe (evaluation/change_probe.py): ridge on |f1 - f2| per
                   token, trained on random crops of aguasclaras, bercy, bordeaux, paris,
                   scored on rennes and hongkong (F1 of the change class, no interval: two
                   test cities).
Seeds {0, 1, 2} draw the OSCD training crops; the EuroSAT probe is deterministic (its std is 0,
the bootstrap interval is its uncertainty). Band subsets (band_input.SUBSETS), wavelengths of
the S2 bands they are read from: landsat = B01 B02 B03 B04 B8A B11 B12 (OLI B1-B7), hls = B02
B03 B04 B8A B11 B12, rgbn = B02 B03 B04 B08.

Args (after ':'): `shared=../shared`, `demo=runs/demo` (holds run/), `size=64` (input
pixels), `crops=16` (OSCD training crops per city), `pretrained=` (default <demo>/run),
`model=` (variant; needed for a weights file without a manifest), `normalization=minmax`.
The same sweep on the official SpectralGPT+ weights (base, 128 px):
  python -m spectralgpt_jax sweep --workdir runs/sensors_plus --config \
    configs/eval/sensor_sweep.py:pretrained=SpectralGPT+.pth,model=mae_vit_base_patch8_128,size=128
(the EuroSAT and OSCD patches are resized to 128 px; GPU recommended).
"""

from configs import common
from configs import evaluation as E
from configs.eval.tiny_sweep import SPLITS
from configs.sweeps import product, sweep

SUBSETS = ("landsat", "hls", "rgbn")
MODES = ("wavelength", "resample", "zero_fill")
SEEDS = (0, 1, 2)
TRAIN_CITIES = "aguasclaras,bercy,bordeaux,paris"
TEST_CITIES = "rennes,hongkong"


def _args(arg):
  return common.parse_arg(arg, shared="../shared", demo="runs/demo", size=64, crops=16,
                          pretrained="", model="mae_vit_tiny_patch8_32",
                          normalization="minmax")


def get_config(arg=None):
  a = _args(arg)
  c = E.eval_config(a.model, pretrained=a.pretrained or f"{a.demo}/run")
  c.bands = "s2"           # band_input.SUBSETS name or comma list, read by both tasks
  c.spectral_mode = "s2"   # data_pipelines.spectral_resample.MODES

  def eurosat(split):
    return E.eval_data(label_type="single", num_classes=10, image_size=a.size, batch_size=20,
                       normalization=a.normalization, source="eurosat",
                       paths=f"{a.shared}/data/eurosat_ms_subset",
                       split_file=f"{SPLITS}/eurosat_subset_{split}.txt")

  c.evals.eurosat_linear = E.linear(eurosat("train"), eurosat("test"), l2_strengths=(1e-2,))
  c.evals.oscd_change = E.change_probe(
      root=f"{a.shared}/data/oscd_s2_subset", train_cities=TRAIN_CITIES,
      test_cities=TEST_CITIES, image_size=a.size, crops_per_city=a.crops)
  for block in c.evals.values():
    block.bands = c.get_ref("bands")
    block.spectral_mode = c.get_ref("spectral_mode")
  return c


def get_sweep(arg=None):
  a = _args(arg)
  encoder = sweep("pretrained", [a.pretrained or f"{a.demo}/run"])  # names the table's rows
  full = product(sweep("bands", ["s2"]), sweep("spectral_mode", ["s2"]))
  subsets = product(sweep("bands", list(SUBSETS)), sweep("spectral_mode", list(MODES)))
  return product(encoder, full + subsets, sweep("seed", list(SEEDS)))
