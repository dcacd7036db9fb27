"""One flag system for every command (argparse): `--snake_case` names, one name per role, the
default in every flag's help, examples at the end of every `--help`. `parse` is the only way a
command reads its argv: a missing required flag or a bad value raises `UsageError`, which
`cli/_failures.py` prints as one line (exit 2).

Names by role, the same in every command:
  --config FILE[:ARG]  an ml_collections config (train, evaluate, sweep, compile)
  --workdir DIR        a run directory: checkpoints, logs, results (train, evaluate, sweep,
                       demo, and import, which writes one)
  --weights PATH       weights to read: a run directory, a step directory, or a .pth /
                       .safetensors file (export, import, embed)
  --input PATH...      data to read (ingest, embed, demo)
  --out PATH           a file or shard directory to write (ingest, export, embed)
  --overwrite          replace existing outputs (every command that would refuse)

Config files (`add_config`): `--config FILE[:ARG]` plus any number of `--config.a.b=VALUE`
(or `--config.a.b VALUE`) overrides, typed by the field they replace and an error for a field
the config lacks (ml_collections `config_flags` semantics; cli/_config.py). `--print_config`
prints the resolved config and exits; it needs no other flag.

Old spellings keep working for one release: each command lists them in `RENAMED_FLAGS`
({old: new}); `rename_deprecated` rewrites them and prints a deprecation warning.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Mapping, Sequence

CONFIG_PREFIX = "--config."


class UsageError(ValueError):
  """The command line is wrong (missing or unknown flag, bad value): exit code 2."""


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


class _Parser(argparse.ArgumentParser):
  """Raises UsageError instead of printing usage and exiting."""

  def error(self, message):
    raise UsageError(message)


def parser(command: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
  """An ArgumentParser for `python -m spectralgpt_jax <command>` with `examples` in its help."""
  epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
  return _Parser(prog=f"python -m spectralgpt_jax {command}", description=description,
                 epilog=epilog, formatter_class=_HelpFormatter)


def add_config(p: argparse.ArgumentParser, what: str = "config file") -> None:
  """`--config FILE[:ARG]` (required) and `--print_config`; `parse` loads the file."""
  p.add_argument("--config", required=True, metavar="FILE[:ARG]",
                 help=f"{what}; ARG goes to its get_config(ARG). Override fields with "
                 "--config.field=value (a misspelled field fails)")
  p.add_argument("--print_config", action="store_true",
                 help="print the resolved config (after overrides) and exit")
  p.loads_config = True


def add_allow_unverified(p: argparse.ArgumentParser) -> None:
  """`--allow_unverified`, for the commands that read checkpoints (see `checkpoint_reads`)."""
  p.add_argument("--allow_unverified", action="store_true",
                 help="read checkpoint steps that lost their checksum record, with a warning "
                 "(default: off, such a step is refused as damaged; docs/reliability.md)")


def checkpoint_reads(args: argparse.Namespace):
  """Context for the command's checkpoint reads: `--allow_unverified` applied."""
  from spectralgpt_jax import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.allow_unverified(getattr(args, "allow_unverified", False))


def split_config_overrides(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, Any]]]:
  """(argv without them, [(dotted key, text or None)]) of the `--config.KEY[=VALUE]` flags.

  `--config.KEY VALUE` takes the next word as its value unless that word is a flag (a
  negative number is a value); a bare `--config.KEY` (None) sets a bool field to True."""
  rest, overrides, i = [], [], 0
  while i < len(argv):
    arg = argv[i]
    if not arg.startswith(CONFIG_PREFIX):
      rest.append(arg)
      i += 1
      continue
    key, eq, value = arg[len(CONFIG_PREFIX):].partition("=")
    if not key:
      raise UsageError(f"{arg}: name a field, as --config.field=value")
    if not eq and i + 1 < len(argv) and not _is_flag(argv[i + 1]):
      value, i = argv[i + 1], i + 1
    overrides.append((key, value if eq or value else None))
    i += 1
  return rest, overrides


def _is_flag(word: str) -> bool:
  if not word.startswith("-"):
    return False
  try:
    float(word)
    return False
  except ValueError:
    return True


def parse(p: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
  """Parses `argv`; with `--config` declared (add_config), loads it into `args.config` with
  the overrides applied (`args.config_spec`: the file[:arg]; `args.overrides`: {key: value}).
  `--print_config` prints the config and exits 0 (SystemExit), as --help does."""
  has_config = getattr(p, "loads_config", False)
  rest, overrides = split_config_overrides(argv) if has_config else (list(argv), [])
  printing = has_config and "--print_config" in rest
  required = [a for a in p._actions if a.required and a.dest != "config"]  # pylint: disable=protected-access
  if printing:  # --print_config needs only --config
    for a in required:
      a.required = False
  try:
    args = p.parse_args(rest)
  finally:
    for a in required:
      a.required = True
  if not has_config:
    return args
  from spectralgpt_jax.cli import _config  # pylint: disable=g-import-not-at-top
  args.config_spec = args.config
  args.config = _config.load(args.config_spec)
  args.overrides = _config.apply_overrides(args.config, overrides, args.config_spec)
  if printing:
    print(args.config)
    raise SystemExit(0)
  return args
