"""Orbax checkpoints of a run, `<workdir>/checkpoints/<step>/{state, data_iter, meta}`.

Layout contract (written by training, read by `export`, `inference` and `init_from`):
  state      pytree dict {"params": unboxed Flax params, "opt_state": optax state, "step": int}
  data_iter  grain iterator state (one JSON file per process)
  meta       JSON {"config": config.to_dict(), "model": {"name", **get_model kwargs},
                   "bands": [...], "normalization": {...}, "counters": {...}}
Step N holds the state after N optimizer updates; the iterator then yields batch N next.
  checksums  JSON {"format", "arrays": {leaf path: [sum, weighted sum]}} of every saved array
Orbax writes each step into a temporary folder and commits it by rename, so a crash mid-write
leaves no step that `latest_step` would choose; `checksums` is committed with the step.

Integrity: orbax/tensorstore checksum only the chunk index, so a flipped byte in array data
restores silently. Each save records two 32-bit sums per array (of its bits as uint32 words:
plain, and weighted by position), computed on the devices (no host copy; sharded and
multi-host arrays alike); every restore and read recomputes them and raises
`CheckpointCorruptError` naming the step directory and array on a mismatch (or when orbax
cannot read the step at all). `restore_intact` falls back to the newest intact step. A step
that lost its `checksums` item is refused unless it predates checksums (known from orbax's
`_CHECKPOINT_METADATA` of the step, integrity.py) or the read runs inside
`allow_unverified()`; steps written before checksums existed are restored with a warning.

Modules: layout (paths, item names), integrity (checksums), run (the run's manager), host (reads
and writes without a mesh); everything public is importable from the package.

  make_manager / save / restore          the run's manager; state + iterator + meta
  restore_intact                          newest step that verifies (damaged ones set aside)
  latest_step / read_meta                 what a run directory holds
  params_metadata / load_params           params only, onto given shardings (init_from)
  read_checkpoint / write_checkpoint      params + meta on the host, no mesh (export, import)

`save`/`restore` take the state as a dict, or as an object with `to_dict()` (and a
`from_dict` classmethod, which `restore` then uses to rebuild it).
"""

from spectralgpt_jax.checkpoints.host import (CheckpointContents, read_checkpoint, resolve,
                                              write_checkpoint)
from spectralgpt_jax.checkpoints.integrity import (CheckpointCorruptError, allow_unverified,
                                                   checksums, verify, written_with_checksums)
from spectralgpt_jax.checkpoints.layout import (CHECKPOINTS_SUBDIR, CHECKSUMS, DATA_ITER, META,
                                                STATE, absolute, check_location,
                                                checkpoint_dir)
from spectralgpt_jax.checkpoints.run import (latest_step, load_params, make_manager,
                                             params_metadata, read_meta, restore,
                                             restore_intact, save)

__all__ = ["CHECKPOINTS_SUBDIR", "CHECKSUMS", "DATA_ITER", "META", "STATE", "CheckpointContents",
           "CheckpointCorruptError", "absolute", "allow_unverified", "check_location",
           "checkpoint_dir", "checksums", "latest_step",
           "load_params", "make_manager", "params_metadata", "read_checkpoint", "read_meta",
           "resolve", "restore", "restore_intact", "save", "verify", "write_checkpoint",
           "written_with_checksums"]
