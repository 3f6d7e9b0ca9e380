"""JAX/Flax NNX twins of the seqbench models, and the JAX backend.

Importing this package turns on float64 (``jax_enable_x64``), so that the float64
precision is real; every array and ``nnx.Param`` here carries an explicit dtype.
It also turns off XLA's GPU memory preallocation (unless set), so that memory
readings mean something.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax

jax.config.update("jax_enable_x64", True)

from jax_impl.attention_lstm import AttentionLSTMModel  # noqa: E402
from jax_impl.backend import JaxBackend  # noqa: E402
from jax_impl.interface import ModelInterface, check_models  # noqa: E402
from jax_impl.layers import SequenceModel  # noqa: E402
from jax_impl.lru import LRUModel  # noqa: E402
from jax_impl.minrnn import MinRNNModel  # noqa: E402
from jax_impl.recurrent import RecurrentModel  # noqa: E402
from jax_impl.transformer import TransformerModel  # noqa: E402

# arch name -> NNX module class; keys exactly experiments.spec.ARCHITECTURES.
MODELS: dict[str, type[SequenceModel]] = {
    "rnn": RecurrentModel,
    "lstm": RecurrentModel,
    "gru": RecurrentModel,
    "bilstm": RecurrentModel,
    "attention_lstm": AttentionLSTMModel,
    "transformer": TransformerModel,
    "mingru": MinRNNModel,
    "minlstm": MinRNNModel,
    "lru": LRUModel,
}

check_models(MODELS)  # an incomplete registry fails at import, naming the missing piece
BACKEND = JaxBackend(MODELS)

__all__ = [
    "BACKEND",
    "MODELS",
    "AttentionLSTMModel",
    "JaxBackend",
    "LRUModel",
    "MinRNNModel",
    "ModelInterface",
    "RecurrentModel",
    "TransformerModel",
]
