"""A 224-band hyperspectral SpectralGPT base MAE (128 px), wavelength-aware spectral positions.

The base architecture with model.spectral_positions="wavelength" on an EnMAP-like band set
(data_pipelines.sensors "enmap_like": 224 bands 420-2450 nm, grouped by wavelength in threes,
the last group padded: 75 groups x 16 x 16 = 19,200 tokens per image, 1,919 kept at mask
ratio 0.9). The same parameters as the S2 base model plus the two zero-initialised residuals,
so a run of S2 weights continues here (`--config.init_from.workdir=RUN`: the residuals,
absent from it, start at zero).

  python -m spectralgpt_jax compile --config configs/pods/hyperspectral.py --target v5e-256
  python -m spectralgpt_jax compile --config configs/pods/hyperspectral.py:target=8xh100 \
      --target 8xh100 --plan

Args: `target=v5e256` (mesh data 16 x fsdp 16) or `8xh100` (fsdp 8), `batch` (global batch;
planned: PLANS), `sensor=enmap_like` (any data_pipelines.sensors name), `mode=wavelength`.
Per-device memory the compiler reported on 2026-12-05 (one compile each, not a `--plan` search;
remat full leaves room for more per device, bf16, attention "auto"):
  v5e-256, batch 512 (2 per chip), remat full: 2.60 of 15.75 GiB; compile 802 s on 2 CPU cores.
  8xh100, batch 256, accum_steps 4 (8 per GPU per microbatch), remat full: 8.10 of 79.10 GiB;
    the decoder's 19,200 tokens through cuDNN flash attention, the encoder's odd 1,919 kept
    tokens through XLA (cuDNN refuses odd lengths in training).
"""

from configs import common
from configs.pods import pod

MESHES = {"v5e256": {"data": 16, "fsdp": 16, "tensor": 1},
          "8xh100": {"data": 1, "fsdp": 8, "tensor": 1}}
PLANS = {"v5e256": {512: ("full", 1), 256: ("full", 1)},
         "8xh100": {256: ("full", 4), 64: ("full", 1)}}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, target="v5e256", batch=0, sensor="enmap_like", mode="wavelength")
  if a.target not in MESHES:
    raise ValueError(f"target {a.target!r}; use one of {sorted(MESHES)}")
  plans = PLANS[a.target]
  batch = a.batch or max(plans)
  c = pod.pod_config("base", f"batch={batch}", mesh=MESHES[a.target], plans=plans)
  c.model.spectral_positions = "wavelength"
  c.spectral.sensor, c.spectral.mode = a.sensor, a.mode
  return c
