"""The commands that compile keep a persistent compilation cache: a rerun of the same config
loads the train step instead of compiling it. Turned on by the CLI, never by an import."""

import os
import subprocess
import sys

import pytest

from spectralgpt_jax.cli import _jax_cache

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _entries(folder):
  return sorted(n for n in os.listdir(folder) if not n.endswith("-atime")) if os.path.isdir(
      folder) else []


def _train(workdir, env):
  cmd = [sys.executable, "-m", "spectralgpt_jax", "train", "--config",
         os.path.join(REPO, "configs/pretrain/tiny_s2.py:synthetic,size=32"),
         "--workdir", str(workdir), "--config.total_steps=1", "--config.log.panel_every_steps=0"]
  res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
  assert res.returncode == 0, res.stderr[-3000:]
  return res.stderr


def _env(cache):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
  env.update(SPECTRALGPT_JAX_COMPILATION_CACHE=str(cache),
             XLA_FLAGS="--xla_force_host_platform_device_count=1",
             PYTHONPATH=os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH", "")])))
  return env


# A process as the CLI starts one: the cache turned on by its start hook, then a compile.
_CHILD = """
import jax, jax.numpy as jnp
from jax import monitoring
from spectralgpt_jax.cli import _jax_cache
hits = []
monitoring.register_event_listener(
    lambda name, **kw: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None)
print(_jax_cache.enable())
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # this program is quick
jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 64))).block_until_ready()
print(len(hits))
"""


def test_the_cli_start_hook_caches_across_processes(tmp_path):
  cache = tmp_path / "cache"
  runs = [subprocess.run([sys.executable, "-c", _CHILD], env=_env(cache), capture_output=True,
                         text=True, check=True).stdout.split() for _ in range(2)]
  assert runs[0] == [str(cache), "0"] and _entries(cache)
  assert runs[1][0] == str(cache) and int(runs[1][1]) >= 1  # the second process loaded them


@pytest.mark.slow
def test_a_rerun_loads_the_compiled_step_from_the_cache(tmp_path):
  """~45 s on 2 cores: the first run compiles (11.6 s for the train step), the second loads."""
  cache = tmp_path / "cache"
  env = _env(cache)
  log = _train(tmp_path / "a", env)
  first = _entries(cache)
  assert first, f"nothing cached in {cache}:\n{log[-2000:]}"
  _train(tmp_path / "b", env)  # same program, new run: every program comes from the cache
  assert _entries(cache) == first


def test_cache_location_and_switch():
  assert _jax_cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == "/x/spectralgpt_jax/jax_cache"
  assert _jax_cache.cache_dir({_jax_cache.ENV: "/y/c"}) == "/y/c"
  assert _jax_cache.cache_dir({_jax_cache.ENV: "off"}) is None


def test_importing_the_cli_turns_nothing_on():
  code = ("import jax, spectralgpt_jax.__main__, spectralgpt_jax.cli.train; "
          "print(repr(jax.config.jax_compilation_cache_dir))")
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=REPO, check=True).stdout.strip()
  assert out in ("None", "''"), out
