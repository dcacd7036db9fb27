"""`python -m spectralgpt_jax import`: official / exported PyTorch weights -> orbax checkpoint."""

from __future__ import annotations

import argparse
import sys

HELP = "import SpectralGPT .pth/.safetensors weights into an orbax checkpoint"


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m spectralgpt_jax import", description=HELP)
  p.add_argument("--torch", required=True, metavar="FILE",
                 help="SpectralGPT.pth / SpectralGPT+.pth (with or without a 'model' key), or "
                 "our own export (.pth or .safetensors)")
  p.add_argument("--model", default=None,
                 help="target variant, e.g. mae_vit_base_patch8_128 (continue pretraining) or "
                 "vit_base_patch8_128 (fine-tune; decoder dropped). Default: from the file's "
                 "manifest or its shapes")
  p.add_argument("--out", required=True,
                 help="output run directory: writes <out>/checkpoints/<step>/{state,meta}; "
                 "train from it with --config.init_from.workdir=<out>")
  p.add_argument("--image-size", type=int, default=None,
                 help="target image size; position tables are resized to it")
  p.add_argument("--num-classes", type=int, default=None, help="classifier width (ViT targets)")
  p.add_argument("--scan", action="store_true", help="store blocks stacked (nn.scan layout)")
  p.add_argument("--step", type=int, default=0, help="step number to write (default 0)")
  p.add_argument("--force", action="store_true", help="replace an existing step directory")
  return p


def main(argv: list[str]) -> int:
  args = build_parser().parse_args(argv)
  from spectralgpt_jax.export import from_torch  # pylint: disable=g-import-not-at-top
  try:
    step_dir, conv, meta = from_torch.import_file(
        args.torch, args.out, model=args.model, image_size=args.image_size,
        num_classes=args.num_classes, scan=args.scan, step=args.step, force=args.force)
  except (FileExistsError, FileNotFoundError, ImportError, KeyError, ValueError) as e:
    print(f"import failed: {e}", file=sys.stderr)
    return 1
  print(f"wrote {step_dir} (model {meta['model']})")
  for note in conv.notes:
    print(f"note: {note}")
  return 0
