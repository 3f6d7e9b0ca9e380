"""Result records: the builder, the store, the environment manifest, the field readers, and
``load(results_dir)``: the records as a pandas DataFrame, one row each (``frame.py``)."""

from experiments.records.frame import load

__all__ = ["load"]
