"""The PyTorch twin: models per architecture and the backend adapter (``BACKEND``).

``MODELS`` maps each name of ``experiments.spec.ARCHITECTURES`` to its module class;
adding an architecture adds one line here.
"""

from __future__ import annotations

from torch_impl.attention_lstm import AttentionLSTMModel
from torch_impl.backend import TorchBackend
from torch_impl.interface import ModelInterface, check_models
from torch_impl.layers import SequenceModel
from torch_impl.lru import LRUModel
from torch_impl.minrnn import MinRNNModel
from torch_impl.recurrent import RecurrentModel
from torch_impl.transformer import TransformerModel

# arch name -> module class; keys exactly experiments.spec.ARCHITECTURES.
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
BACKEND = TorchBackend(MODELS)

__all__ = [
    "BACKEND",
    "MODELS",
    "AttentionLSTMModel",
    "LRUModel",
    "MinRNNModel",
    "ModelInterface",
    "RecurrentModel",
    "TorchBackend",
    "TransformerModel",
]
