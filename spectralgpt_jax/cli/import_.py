"""`python -m spectralgpt_jax import`: official / exported PyTorch weights -> orbax checkpoint."""

from __future__ import annotations

import argparse

from spectralgpt_jax.cli import _failures, _flags

HELP = "import SpectralGPT .pth/.safetensors weights into an orbax checkpoint"
RENAMED_FLAGS = {"--torch": "--weights", "--out": "--workdir", "--image-size": "--image_size",
                 "--num-classes": "--num_classes", "--force": "--overwrite"}
EXAMPLES = (
    "python -m spectralgpt_jax import --weights SpectralGPT+.pth "
    "--model mae_vit_base_patch8_128 --workdir runs/imported",
    "python -m spectralgpt_jax import --weights spectralgpt_tiny.pth --model vit_tiny_patch8_32 "
    "--num_classes 19 --workdir runs/tiny_vit",
)


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("import", HELP, EXAMPLES)
  p.add_argument("--weights", required=True, metavar="FILE",
                 help="SpectralGPT.pth / SpectralGPT+.pth (with or without a 'model' key), or "
                 "our own export (.pth or .safetensors) of an MAE, classifier, segmenter or "
                 "change detector")
  p.add_argument("--model", default=None,
                 help="target variant, e.g. mae_vit_base_patch8_128 (continue pretraining) or "
                 "vit_base_patch8_128 (fine-tune; decoder dropped). Default: from the file's "
                 "manifest or its shapes; a dense file without a manifest needs it "
                 "(seg_* or cd_*)")
  p.add_argument("--workdir", required=True,
                 help="run directory to write: <workdir>/checkpoints/<step>/{state,meta}; "
                 "train from it with --config.init_from.workdir=<workdir>")
  p.add_argument("--image_size", type=int, default=None,
                 help="target image size; position tables are resized to it (default: the "
                 "manifest's, else the variant's)")
  p.add_argument("--num_classes", type=int, default=None,
                 help="classifier width (ViT targets; default: the file's head, else the "
                 "variant's)")
  p.add_argument("--scan", action="store_true", help="store blocks stacked (nn.scan layout)")
  p.add_argument("--step", type=int, default=0, help="step number to write")
  p.add_argument("--overwrite", action="store_true", help="replace an existing step directory")
  return p


@_failures.command("import")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  from spectralgpt_jax.export import from_torch  # pylint: disable=g-import-not-at-top
  step_dir, conv, meta = from_torch.import_file(
      args.weights, args.workdir, model=args.model, image_size=args.image_size,
      num_classes=args.num_classes, scan=args.scan, step=args.step, force=args.overwrite)
  print(f"wrote {step_dir} (model {meta['model']})")
  for note in conv.notes:
    print(f"note: {note}")
  return 0
