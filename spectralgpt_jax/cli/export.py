"""`python -m spectralgpt_jax export`: orbax checkpoint -> official PyTorch weights + manifest."""

from __future__ import annotations

import argparse
import sys

HELP = "export an orbax checkpoint to official-layout PyTorch weights (.pth/.safetensors)"


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m spectralgpt_jax export", description=HELP)
  p.add_argument("--checkpoint", required=True,
                 help="workdir, its checkpoints/ directory, or one <step> directory")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  p.add_argument("--out", required=True, help="output file (.pth or .safetensors); the "
                 "manifest goes to <out>.json")
  p.add_argument("--format", choices=("pth", "safetensors"), default=None,
                 help="default: from the --out suffix (.safetensors, else pth)")
  p.add_argument("--target", choices=("pretrain", "finetune"), default="pretrain",
                 help="official module: models_mae_spectral (pretrain) or models_vit_tensor "
                 "(finetune, single pos_embed = spatial + spectral)")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  p.add_argument("--model", default=None, help="variant name, overriding the checkpoint meta")
  p.add_argument("--num-classes", type=int, default=None,
                 help="head width when exporting an MAE to --target finetune (zeros head)")
  p.add_argument("--force", action="store_true", help="overwrite existing output files")
  return p


def main(argv: list[str]) -> int:
  args = build_parser().parse_args(argv)
  from spectralgpt_jax.export import to_torch  # pylint: disable=g-import-not-at-top
  try:
    res = to_torch.export_checkpoint(
        args.checkpoint, args.out, step=args.step, fmt=args.format, target=args.target,
        dtype=args.dtype, model=args.model, num_classes=args.num_classes, force=args.force)
  except (FileExistsError, FileNotFoundError, ImportError, KeyError, ValueError) as e:
    print(f"export failed: {e}", file=sys.stderr)
    return 1
  w = res.data["weights"]
  print(f"wrote {res.weights} ({w['num_tensors']} tensors, {w['num_params']:,} parameters, "
        f"{w['dtype']}, step {res.data['training_step']}, target {res.data['target']})")
  print(f"wrote {res.manifest}")
  for note in res.data["notes"]:
    print(f"note: {note}")
  return 0
