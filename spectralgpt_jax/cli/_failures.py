"""One line per failure for every command: each command's `main` is wrapped by
`@command("<name>")`, which runs it through `run(command, main, argv)`, so calling `main(argv)`
from Python behaves as the command line does (an exit code, never a traceback).

Expected failures (bad input, bad config, missing file, corrupt data or checkpoint, unusable
weights: OSError, ValueError, KeyError, ImportError, MemoryError and the project's errors,
which subclass those) end as one stderr line `<command> failed: <what, naming the file>
[<what to do>]`, exit code 1. The traceback goes to a file named on that line, or to stderr
with `--verbose` (any command accepts it). A wrong command line (cli/_flags.UsageError: a
missing or unknown flag, a bad value) is one line without a traceback file, exit 2; --help and
--print_config exit 0. Anything else is a bug: full traceback, exit 1.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import traceback
from typing import Callable

from spectralgpt_jax.cli._flags import UsageError

EXPECTED = (OSError, ValueError, KeyError, ImportError, MemoryError, LookupError)
# RuntimeErrors that are outcomes, not bugs (matched by class name along the MRO).
EXPECTED_NAMES = ("TrainingDiverged",)

# exception class name -> what to do (checked along the MRO, most specific first)
_HINTS = {
    "CorruptRecordError": "re-ingest that shard, or train with --config.data.skip_corrupt=True "
                          "to skip bad records",
    "ShardMismatchError": "re-ingest the shards (ingest --overwrite), fix the manifest, or set "
                          "--config.data.skip_corrupt=True to skip bad shards",
    "CheckpointCorruptError": "training resumes from the newest intact step "
                              "(checkpoint.on_corrupt='fallback'); export/load an older --step",
    "BadInputError": "fix or remove that file, or pass --skip_bad (ingest)",
    "FileNotFoundError": "check the path",
    "FileExistsError": "pass --overwrite to replace it, or choose another output",
    "MemoryError": "lower the batch size, or check the input for a corrupt size field",
    "TrainingDiverged": "lower the learning rate or check the data; rerunning resumes from the "
                        "checkpoint written before it stopped",
}


def _message(e: BaseException) -> str:
  if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
    text = e.args[0]
  else:
    text = str(e) or type(e).__name__
  text = " ".join(text.split())
  name = type(e).__name__
  return text if name in ("ValueError", "OSError", "UsageError") else f"{text} ({name})"


def _hint(e: BaseException) -> str:
  for cls in type(e).__mro__:
    if cls.__name__ in _HINTS:
      return _HINTS[cls.__name__]
  return ""


def _save_traceback(command: str, e: BaseException) -> str | None:
  try:
    fd, path = tempfile.mkstemp(prefix=f"spectralgpt_jax-{command}-", suffix=".traceback")
    with os.fdopen(fd, "w") as f:
      f.write("".join(traceback.format_exception(e)))
    return path
  except OSError:
    return None


def _is_expected(e: BaseException) -> bool:
  return isinstance(e, EXPECTED) or any(c.__name__ in EXPECTED_NAMES for c in type(e).__mro__)


def run(command: str, main: Callable[[list[str]], int | None], argv: list[str]) -> int:
  """Runs `main(argv)` (without `--verbose`), turning expected failures into one line."""
  verbose = "--verbose" in argv
  argv = [a for a in argv if a != "--verbose"]
  try:
    return int(main(argv) or 0)
  except SystemExit as e:  # --help, --print_config
    return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  except KeyboardInterrupt:
    print(f"{command}: interrupted", file=sys.stderr)
    return 130
  except UsageError as e:
    sys.stdout.flush()
    print(f"{command} failed: {_message(e)} [see python -m spectralgpt_jax {command} --help]",
          file=sys.stderr, flush=True)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    if not _is_expected(e):
      traceback.print_exception(e, file=sys.stderr)
      print(f"{command} failed with an internal error (a bug; please report it with the "
            f"traceback above): {type(e).__name__}: {e}", file=sys.stderr, flush=True)
      return 1
    if verbose:
      traceback.print_exception(e, file=sys.stderr)
    line = f"{command} failed: {_message(e)}"
    hint = _hint(e)
    if hint:
      line += f" [{hint}]"
    if not verbose:
      where = _save_traceback(command, e)
      line += f" (traceback: {where}; --verbose prints it)" if where else ""
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
    return 1


def command(name: str):
  """Decorator for a command's `main(argv)`: runs it through `run(name, ...)`."""
  def wrap(main: Callable[[list[str]], int | None]) -> Callable[[list[str]], int]:
    @functools.wraps(main)
    def wrapped(argv: list[str]) -> int:
      return run(name, main, list(argv))
    return wrapped
  return wrap
