"""The persistent XLA compilation cache of the commands that compile (`COMMANDS`): a rerun of
the same program loads the compiled executable instead of compiling it again.

Where: `$SPECTRALGPT_JAX_COMPILATION_CACHE` if set ("off" turns the cache off), else
`$XDG_CACHE_HOME/spectralgpt_jax/jax_cache` (`~/.cache/spectralgpt_jax/jax_cache`). JAX's own
`JAX_COMPILATION_CACHE_DIR`, when set, wins. Turned on when a command starts (`__main__`),
never at import, so importing the package changes nothing in a user's process. JAX caches
programs that took over a second to compile (`jax_persistent_cache_min_compile_time_secs`).
"""

from __future__ import annotations

import os
import sys
from typing import Mapping

ENV = "SPECTRALGPT_JAX_COMPILATION_CACHE"
COMMANDS = ("train", "evaluate", "sweep", "demo", "embed", "predict")


def default_dir(environ: Mapping[str, str] = os.environ) -> str:
  base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "spectralgpt_jax", "jax_cache")


def cache_dir(environ: Mapping[str, str] = os.environ) -> str | None:
  """The directory the CLI caches compiled programs in; None when turned off."""
  value = environ.get(ENV, "").strip()
  if value.lower() in ("off", "0", "none", "false"):
    return None
  return os.path.abspath(os.path.expanduser(value)) if value else default_dir(environ)


def enable() -> str | None:
  """Turns the cache on for this process (before anything compiles); returns its directory,
  None when off. A directory that cannot be created is reported and the run goes on uncached."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.config.jax_compilation_cache_dir:  # JAX_COMPILATION_CACHE_DIR or set by the caller
    return jax.config.jax_compilation_cache_dir
  path = cache_dir()
  if path is None:
    return None
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    print(f"warning: compilation cache off: cannot create {path} ({e}); set ${ENV} to a "
          "writable directory", file=sys.stderr)
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  return path
