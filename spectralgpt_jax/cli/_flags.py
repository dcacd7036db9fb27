"""One flag style for every command: `--snake_case` names (as absl spells `train`'s), one name
per role, the default in every flag's help, examples at the end of every `--help`.

Names by role, the same in every command:
  --config FILE[:ARG]  an ml_collections config (train, evaluate, sweep, compile)
  --workdir DIR        a run directory: checkpoints, logs, results (train, evaluate, sweep,
                       demo, and import, which writes one)
  --weights PATH       weights to read: a run directory, a step directory, or a .pth /
                       .safetensors file (export, import, embed)
  --input PATH...      data to read (ingest, embed, demo)
  --out PATH           a file or shard directory to write (ingest, export, embed)
  --overwrite          replace existing outputs (every command that would refuse)

Old spellings keep working for one release: each command lists them in `RENAMED_FLAGS`
({old: new}); `rename_deprecated` rewrites them and prints a deprecation warning.
"""

from __future__ import annotations

import argparse
import sys
from typing import Mapping, Sequence


def rename_deprecated(command: str, argv: Sequence[str], renamed: Mapping[str, str],
                      ) -> list[str]:
  """`argv` with deprecated flag names replaced by their new names (`--old`, `--old=v`), one
  warning on stderr per name used."""
  out, warned = [], set()
  for arg in argv:
    name, eq, value = arg.partition("=")
    if name in renamed:
      new = renamed[name]
      if name not in warned:
        print(f"warning: `{command} {name}` is deprecated and will be removed in the next "
              f"release; use {new}", file=sys.stderr)
        warned.add(name)
      arg = new + eq + value
    out.append(arg)
  return out


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
  """Keeps the description's and epilog's line breaks; appends "(required)" or the default to
  every flag whose help does not already say it."""

  def _get_help_string(self, action):
    text = action.help or ""
    if not action.option_strings or "-h" in action.option_strings:
      return text
    if action.required:
      return text + " (required)"
    if "default" in text.lower() or action.default is argparse.SUPPRESS:
      return text
    return text + (" (default: off)" if action.nargs == 0 else " (default: %(default)s)")


def parser(command: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
  """An ArgumentParser for `python -m spectralgpt_jax <command>` with `examples` in its help."""
  epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
  return argparse.ArgumentParser(prog=f"python -m spectralgpt_jax {command}",
                                 description=description, epilog=epilog,
                                 formatter_class=_HelpFormatter)
