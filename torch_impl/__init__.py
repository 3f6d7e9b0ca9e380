"""The PyTorch twin: models per architecture and the backend adapter (``BACKEND``).

``MODELS`` maps each name of ``experiments.spec.ARCHITECTURES`` to its module class;
adding an architecture adds one line here.
"""

from __future__ import annotations

from torch import nn

from torch_impl.attention_lstm import AttentionLSTM
from torch_impl.backend import TorchBackend
from torch_impl.recurrent import RecurrentModel
from torch_impl.transformer import TransformerModel

MODELS: dict[str, type[nn.Module]] = {
    "rnn": RecurrentModel,
    "lstm": RecurrentModel,
    "gru": RecurrentModel,
    "bilstm": RecurrentModel,
    "attention_lstm": AttentionLSTM,
    "transformer": TransformerModel,
}

BACKEND = TorchBackend(MODELS)

__all__ = ["BACKEND", "MODELS", "AttentionLSTM", "RecurrentModel", "TorchBackend", "TransformerModel"]
