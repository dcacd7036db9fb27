"""One flag system across commands (argparse, cli/_flags.py): every flag has help (with its
default), every command's --help shows an example, old names still work with a deprecation
warning, `--config.a.b=v` overrides are typed as ml_collections' config_flags types them, a
wrong command line is one line with exit 2, and `train --print_config` prints the resolved
config."""

import argparse
import importlib
import pathlib
import re

import pytest

from spectralgpt_jax import __main__ as entry
from spectralgpt_jax.cli import _flags

COMMANDS = entry._commands()
ROOT = pathlib.Path(__file__).resolve().parents[2]  # config paths work from any directory


def _module(name):
  return importlib.import_module(f"spectralgpt_jax.cli.{entry._ALIASES.get(name, name)}")


def test_every_command_is_covered():
  assert set(COMMANDS) == {"compile", "convert_shards", "demo", "embed", "evaluate", "export",
                           "import", "ingest", "inspect", "models", "predict", "sweep", "train"}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_an_example_and_every_flag_has_help(name, capsys):
  assert entry.main([name, "--help"]) == 0  # compile: --help needs no compiler
  text = capsys.readouterr().out
  assert re.search(r"^examples?:", text, re.I | re.M), text
  assert f"python -m spectralgpt_jax {name}" in text.split("xample", 1)[1]
  module = _module(name)
  assert hasattr(module.main, "__wrapped__"), f"{name}: main is not @_failures.command"
  for action in module.build_parser()._actions:
    if isinstance(action, argparse._HelpAction):
      continue
    assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    if action.option_strings and not action.required:
      assert all("-" not in o[2:] for o in action.option_strings), (
          f"{name} {action.option_strings}: flags are snake_case")
  for line in _option_help(text):
    assert "default" in line.lower() or "(required)" in line, f"{name}: no default in {line!r}"


def _option_help(text):
  """The help of every optional flag (joined lines), from argparse's 'options:' sections."""
  body = text.split("examples:")[0]
  entries, current = [], None
  for line in body.splitlines():
    if re.match(r"^  --", line):
      if current:
        entries.append(current)
      current = line
    elif current is not None and line.startswith("    "):
      current += " " + line.strip()
    else:
      if current:
        entries.append(current)
      current = None
  if current:
    entries.append(current)
  return [e for e in entries if "--help" not in e]


def test_old_names_keep_working_with_a_deprecation_warning(capsys):
  renamed = {"--force": "--overwrite", "--torch": "--weights"}
  out = _flags.rename_deprecated("import", ["--torch=a.pth", "--force", "--force", "--model",
                                            "x"], renamed)
  assert out == ["--weights=a.pth", "--overwrite", "--overwrite", "--model", "x"]
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 2 and all("deprecated" in e for e in err)
  assert "`import --torch` is deprecated" in err[0] and "use --weights" in err[0]


def test_every_renamed_flag_exists_under_its_new_name():
  for name in COMMANDS:
    module = _module(name)
    for old, new in getattr(module, "RENAMED_FLAGS", {}).items():
      assert new in module.build_parser()._option_string_actions, (name, new)
      assert old not in module.build_parser()._option_string_actions, (name, old)


def test_deprecated_name_through_the_cli(tmp_path, capsys):
  """ingest under an old flag spelling: warned about, and the flag still takes effect (without
  it a missing input fails the run)."""
  rc = entry.main(["ingest", "--source", "geotiff", "--input", str(tmp_path / "none.tif"),
                   "--out", str(tmp_path / "o"), "--shards", "1", "--skip-bad"])
  cap = capsys.readouterr()
  assert "`ingest --skip-bad` is deprecated" in cap.err and "use --skip_bad" in cap.err
  assert rc == 0 and '"skipped": 1' in cap.out


def test_train_print_config_prints_the_resolved_config_and_exits(capsys):
  argv = ["train", "--config", f"{ROOT / 'configs/pretrain/tiny_s2.py'}:synthetic",
          "--config.total_steps=7", "--config.optim.blr", "0.5",
          "--print_config"]   # no --workdir: not needed to print
  rc = entry.main(argv)
  out = capsys.readouterr().out
  assert rc == 0
  assert re.search(r"^total_steps: 7$", out, re.M), out
  assert re.search(r"^  warmup_steps: 0$", out, re.M)  # 7 * 80 // 800: derived fields follow
  assert re.search(r"^  lr: 0\.03125$", out, re.M)     # 0.5 * 16 / 256
