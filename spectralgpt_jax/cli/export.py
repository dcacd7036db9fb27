"""`python -m spectralgpt_jax export`: orbax checkpoint -> official PyTorch weights + manifest."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile

from data_pipelines import storage
from spectralgpt_jax.cli import _failures, _flags

HELP = "export an orbax checkpoint to official-layout PyTorch weights (.pth/.safetensors)"
RENAMED_FLAGS = {"--checkpoint": "--weights", "--num-classes": "--num_classes",
                 "--force": "--overwrite"}
EXAMPLES = (
    "python -m spectralgpt_jax export --weights runs/demo/run --out spectralgpt_tiny.pth",
    "python -m spectralgpt_jax export --weights runs/base96 --step 20000 "
    "--out base96.safetensors --dtype bfloat16",
)


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("export", HELP + "; the manifest goes to <out>.json", EXAMPLES)
  p.add_argument("--weights", required=True,
                 help="run directory (workdir), its checkpoints/ directory, or one <step> "
                 "directory")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  p.add_argument("--out", required=True, help="output file (.pth or .safetensors); the "
                 "manifest goes to <out>.json")
  p.add_argument("--format", choices=("pth", "safetensors"), default=None,
                 help="default: from the --out suffix (.safetensors, else pth)")
  p.add_argument("--target", choices=("pretrain", "finetune", "dense"), default=None,
                 help="official module: models_mae_spectral (pretrain) or models_vit_tensor "
                 "(finetune, single pos_embed = spatial + spectral); dense: a segmenter or "
                 "change detector with its head (docs/weights.md). Default: dense for dense "
                 "models, else pretrain")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="dtype of the written tensors")
  p.add_argument("--model", default=None,
                 help="variant name, overriding the checkpoint meta (default: from the meta)")
  p.add_argument("--num_classes", type=int, default=None,
                 help="head width when exporting an MAE to --target finetune (zeros head; "
                 "default: the model's)")
  p.add_argument("--overwrite", action="store_true", help="replace existing output files")
  _flags.add_allow_unverified(p)
  return p


@contextlib.contextmanager
def _staged(out: str, overwrite: bool):
  """`out` itself for a local path; for a URL, a file of the same name in a temporary folder."""
  if not storage.is_url(out):
    yield out
    return
  if storage.exists(out) and not overwrite:
    raise FileExistsError(f"{out} exists")
  with tempfile.TemporaryDirectory(prefix="spectralgpt-export-") as tmp:
    yield os.path.join(tmp, storage.basename(out))


@_failures.command("export")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  from data_pipelines import dense  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.export import to_torch  # pylint: disable=g-import-not-at-top
  with _flags.checkpoint_reads(args), _staged(args.out, args.overwrite) as out:
    res = to_torch.export_checkpoint(
        args.weights, out, step=args.step, fmt=args.format, target=args.target,
        dtype=args.dtype, model=args.model, num_classes=args.num_classes,
        force=args.overwrite, classes=dense.class_names)
    if out != args.out:   # a URL: weights, then the manifest, each in one PUT
      for local in (res.weights, res.manifest):
        storage.write_bytes(storage.join(storage.parent(args.out), local.name),
                            local.read_bytes())
      res.weights, res.manifest = args.out, args.out + ".json"
  w = res.data["weights"]
  print(f"wrote {res.weights} ({w['num_tensors']} tensors, {w['num_params']:,} parameters, "
        f"{w['dtype']}, step {res.data['training_step']}, target {res.data['target']})")
  print(f"wrote {res.manifest}")
  for note in res.data["notes"]:
    print(f"note: {note}")
  return 0
