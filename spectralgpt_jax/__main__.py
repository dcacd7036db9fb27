"""`python -m spectralgpt_jax <command> [args]`: dispatches to `spectralgpt_jax.cli.<command>`.

Every module in `spectralgpt_jax/cli/` that defines `main(argv: list[str]) -> int` and a one-line
`HELP` string is a command. Modules are imported only when their command runs, so a command's
heavy dependencies (torch, rasterio) never slow the others down. Every command's `main` runs
through `cli._failures.run` (its `@_failures.command` decorator): an expected failure ends as
one line naming the file and what to do (exit 1), a wrong command line as one line (exit 2);
`--verbose` prints the traceback. Before it runs: deprecated flag names (a module's
`RENAMED_FLAGS`) are rewritten with a warning (cli/_flags.py), and the commands that compile
turn on the persistent compilation cache (cli/_jax_cache.py).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from spectralgpt_jax import cli
from spectralgpt_jax.cli import _failures, _flags, _jax_cache

# `import` is a Python keyword, so that command lives in `cli/import_.py`.
_ALIASES = {"import": "import_"}
_COMMAND_OF_MODULE = {module: command for command, module in _ALIASES.items()}


def _commands() -> list[str]:
  modules = [m.name for m in pkgutil.iter_modules(cli.__path__) if not m.name.startswith("_")]
  return sorted(_COMMAND_OF_MODULE.get(m, m) for m in modules)


def _usage() -> str:
  lines = ["usage: python -m spectralgpt_jax <command> [args]   (<command> --help: its flags "
           "and examples)", "", "commands:"]
  for name in _commands():
    module = importlib.import_module(f"spectralgpt_jax.cli.{_ALIASES.get(name, name)}")
    lines.append(f"  {name:<10} {getattr(module, 'HELP', '')}")
  lines += ["", f"Compiled programs are cached in {_jax_cache.default_dir()} "
            f"(${_jax_cache.ENV}: another directory, or off)."]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(_usage())
    return 0
  name = argv[0]
  if name not in _commands():
    print(f"unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
    return 2
  module = importlib.import_module(f"spectralgpt_jax.cli.{_ALIASES.get(name, name)}")
  args = _flags.rename_deprecated(name, argv[1:], getattr(module, "RENAMED_FLAGS", {}))
  if name in _jax_cache.COMMANDS and not any(a in ("-h", "--help", "-help") for a in args):
    _jax_cache.enable()
  return module.main(args)  # every command's main is wrapped by @_failures.command


if __name__ == "__main__":
  sys.exit(main())
