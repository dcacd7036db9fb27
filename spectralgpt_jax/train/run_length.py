"""The run's length when the config leaves it to the data: `config.num_examples` unset (None)
means "the number of examples the shard manifest lists"; `total_steps` and warmup follow it."""

from __future__ import annotations

from absl import logging

from data_pipelines import sources


def resolve_num_examples(config) -> None:
  """Fills `config.num_examples` from the shard manifest when it is None, and logs which number
  the run uses. Raises ValueError when neither it, the manifest nor `config.total_steps` gives
  the run's length."""
  if "num_examples" not in config:
    return
  try:
    found = sources.manifest_num_records(config.data)
  except (OSError, ValueError) as e:
    found = None
    reason = f"({e})"
  else:
    reason = f"(config.data.source={config.data.get('source')!r} has no shard manifest)"
  if config.num_examples is None and found is not None:
    config.num_examples, where = found
    logging.info("num_examples %d from %s", config.num_examples, where)
  elif config.num_examples is not None:
    said = f" (the manifest, {found[1]}, lists {found[0]})" if found else ""
    logging.info("num_examples %d from the config%s", config.num_examples, said)
  elif config.get("total_steps") is not None:
    logging.info("num_examples unset and unknown %s; the run's length is config.total_steps "
                 "%d", reason, config.total_steps)
  else:
    raise ValueError("config.num_examples is unset (it means: read it from the shard "
                     f"manifest) and cannot be read {reason}; set --config.num_examples=N or "
                     "--config.total_steps=N")
  if config.get("total_steps") is None:
    raise ValueError(f"config.total_steps is None (config.num_examples {config.num_examples}, "
                     f"epochs {config.get('epochs')}); set --config.total_steps=N")
