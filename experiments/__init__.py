"""seqbench's framework-free core: specs, tasks, grids, driver, store, claims, report, CLI.

Importing this package loads neither torch nor jax (a test checks it): backends
are reached by name, in worker processes.
"""

__version__ = "0.1.0"
