"""`--config FILE[:ARG] --config.a.b=v` through the one argparse flag system (cli/_flags.py,
cli/_config.py) gives the config ml_collections' own `config_flags` gives for the same argv;
a wrong override is one line naming the flag, exit 2."""

import textwrap

import pytest
from absl import flags
from ml_collections import config_flags

from spectralgpt_jax import __main__ as entry
from spectralgpt_jax.cli import _flags

CONFIG = textwrap.dedent("""
    import ml_collections

    def get_config(arg=None):
      c = ml_collections.ConfigDict()
      c.name = arg or "plain"
      c.steps = 10
      c.lr = 1e-3
      c.flag = False
      c.shape = (1, -1)
      c.paths = "a"
      c.maybe = ml_collections.config_dict.placeholder(int)
      c.free = None
      c.optim = ml_collections.ConfigDict({"blr": 0.5, "decay": True, "sub": {"k": 3}})
      return c
""")


def _reference(path, overrides):
  """The config as ml_collections.config_flags builds it (a private FlagValues)."""
  fv = flags.FlagValues()
  argv = ["prog", f"--config={path}:named"] + overrides
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True,
                                  sys_argv=argv)
  fv(argv)
  return fv.config


def _ours(path, overrides):
  p = _flags.parser("x", "", ())
  _flags.add_config(p)
  return _flags.parse(p, ["--config", f"{path}:named"] + overrides)


OVERRIDES = [
    ["--config.steps=7", "--config.lr=0.25", "--config.name=other"],
    ["--config.flag", "--config.optim.decay=false", "--config.optim.sub.k=-4"],
    ["--config.flag=true", "--config.shape=(2,4)", "--config.maybe=7"],
    ["--config.shape=3,4,5", "--config.paths=/data/x,/data/y"],
    ["--config.optim.blr=1e-4", "--config.paths=gs://b/c", "--config.shape=[7]"],
]


@pytest.mark.parametrize("overrides", OVERRIDES)
def test_overrides_match_config_flags(tmp_path, overrides):
  path = tmp_path / "cfg.py"
  path.write_text(CONFIG)
  want = _reference(str(path), overrides)
  args = _ours(str(path), overrides)
  assert args.config.to_dict() == want.to_dict()
  assert args.config.is_locked
  assert list(args.overrides) == [o[len("--config."):].split("=")[0] for o in overrides]


def test_a_field_holding_none_takes_a_literal_or_text(tmp_path):
  """(config_flags refuses to override a plain None field; here it takes a value.)"""
  path = tmp_path / "cfg.py"
  path.write_text(CONFIG)
  assert _ours(str(path), ["--config.free=[1, 2]"]).config.free == [1, 2]
  assert _ours(str(path), ["--config.free=some text"]).config.free == "some text"


def test_space_separated_values_and_negative_numbers(tmp_path):
  path = tmp_path / "cfg.py"
  path.write_text(CONFIG)
  args = _ours(str(path), ["--config.steps", "-3", "--config.lr", "2", "--config.flag"])
  assert (args.config.steps, args.config.lr, args.config.flag) == (-3, 2.0, True)
  assert isinstance(args.config.lr, float)


@pytest.mark.parametrize("override, text", [
    ("--config.optim.bl=1", "--config.optim.bl: {path}:named has no field 'optim.bl' "
                            "(did you mean optim.blr?)"),
    ("--config.steps=ten", "--config.steps=ten: not a valid int"),
    ("--config.flag=maybe", "--config.flag=maybe: not a valid bool"),
    ("--config.nothing.at_all=1", "has no field 'nothing.at_all'"),
])
def test_bad_override_is_one_line_exit_2(tmp_path, capsys, override, text):
  path = tmp_path / "cfg.py"
  path.write_text(CONFIG)
  rc = entry.main(["evaluate", "--config", f"{path}:named", "--workdir", str(tmp_path / "w"),
                   override])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 2 and len(err) == 1, err
  assert err[0].startswith("evaluate failed: ") and text.format(path=path) in err[0], err
  assert not (tmp_path / "w").exists()


def test_parent_after_child_is_refused(tmp_path):
  path = tmp_path / "cfg.py"
  path.write_text(CONFIG)
  with pytest.raises(_flags.UsageError, match="would replace it"):
    _ours(str(path), ["--config.optim.blr=1", "--config.optim={'blr': 2}"])


def test_missing_required_flag_and_missing_file(tmp_path, capsys):
  assert entry.main(["train", "--config", "configs/pretrain/tiny_s2.py"]) == 2
  err = capsys.readouterr().err.strip()
  assert err == ("train failed: the following arguments are required: --workdir "
                 "[see python -m spectralgpt_jax train --help]")
  assert entry.main(["train", "--config", str(tmp_path / "none.py"), "--workdir",
                     str(tmp_path)]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and f"config file {tmp_path / 'none.py'} not found" in err[0]


def test_commands_without_config_refuse_config_overrides(capsys):
  assert entry.main(["models", "--config.x=1"]) == 2
  assert "unrecognized arguments: --config.x=1" in capsys.readouterr().err
