"""Seeds and record order of the input pipeline.

`derive_seed` turns the config's seed into independent seeds per use and host.
`global_shuffle` is the order of a random-access dataset (ArrayRecord shards): a new seeded
permutation of all records each epoch, split over hosts without overlap.
"""

from __future__ import annotations

import grain
import numpy as np


def derive_seed(base: int, tag: int, process_index: int) -> int:
  """A 32-bit seed for one use (`tag`) on one host, independent of the others."""
  return int(np.random.SeedSequence([base, tag, process_index]).generate_state(1)[0])


def global_shuffle(ds: grain.MapDataset, seed: int | None, num_epochs: int | None,
                   process_index: int, process_count: int) -> grain.MapDataset:
  """This host's part of every epoch of a random-access dataset, globally shuffled.

  Each epoch is a new seeded permutation of all len(ds) elements (grain's index shuffle,
  reseeded per epoch; the same on every host; seed None keeps file order); the epochs run
  back to back (num_epochs None: forever) and host p takes elements p, p + hosts, ... of that
  sequence, so hosts are disjoint and together see every element once per epoch. Indexable,
  so a grain iterator over it resumes exactly from its position."""
  if seed is not None:
    ds = ds.shuffle(seed=derive_seed(seed, 0, 0))
  return ds.repeat(num_epochs)[process_index::process_count]
