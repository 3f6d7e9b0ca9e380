"""cuDNN's LSTM through ``jax.experimental.rnn``: the ``cudnn`` path of ``jax_impl/recurrent.py``.

What the installed API (jax 0.10) is, read from its source, and what this file does with it:

- ``rnn.lstm(x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, num_layers, dropout,
  bidirectional, precision)``: batch-first x (B, T, I), states (L*D, B, H) indexed
  D * layer + direction (torch's order), ``seq_lengths`` (B,) int32. A ``custom_vjp`` whose
  integer, float and bool arguments are ``nondiff_argnums``: they must be Python values, static
  under ``jit`` (here they come from shapes and the spec). One cuDNN descriptor: LSTM, double
  bias (both of torch's biases, kept apart), float32 data and math only, padded IO, batch-major
  unpacked layout, so a ragged batch is run by cuDNN itself: zero outputs at padded steps, each
  sequence's final state at its own length, the reverse direction reversed within each
  sequence's length. A length of 0 makes cuDNN fail (jax issue #17966); ``Batch`` guarantees
  lengths >= 1.
- Precision: cuDNN takes one math type per RNN. ``precision`` HIGHEST selects
  ``CUDNN_FMA_MATH`` (no tensor cores, so no TF32); HIGH or None selects ``CUDNN_DEFAULT_MATH``
  (TF32 allowed); DEFAULT (bfloat16) raises. None is read from ``jax_default_matmul_precision``,
  and our tf32 precision traces under ``default``, which would raise: :func:`cudnn_precision`
  therefore always passes an explicit HIGHEST (float32) or HIGH (tf32).
- Dropout between layers is cuDNN's own (its RNG, seed 123), not ours: we pass 0 and apply
  ``jax_impl.layers.dropout`` between separate calls (``recurrent.cudnn_encoder``).
- Weights: one flat float32 vector, :func:`pack_lstm_weights`. ``rnn.lstm_ref`` (pure JAX,
  any device) consumes the same vector through ``rnn.unpack_lstm_weights``:
  :func:`lstm_ref_kernel` is the same function on CPU, how tests/test_jax_cudnn.py checks the
  packing and everything around the kernel without a GPU.
- Not given by cuDNN: the gate activations (``extras["gates"]``): ``recurrent.cudnn_encoder``
  takes them from the scan kernel in the same call.

jax only: torch's cuDNN path is its own ``nn.LSTM`` (see the exception list in
tests/test_import_rules.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import rnn

from jax_impl.layers import Array

# (weight_ih (4H, in), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,)): one direction of one layer
LSTMWeights = tuple[Array, Array, Array, Array]
# rnn.lstm's signature; tests pass lstm_ref_kernel in its place
Kernel = Callable[..., tuple[Array, Array, Array]]
CUDNN_PRECISIONS = ("float32", "tf32")  # cuDNN's descriptor here is CUDNN_DATA_FLOAT only


def cudnn_refusal(cell: str, precision: str, device: str) -> str | None:
    """Why ``jax.experimental.rnn``'s cuDNN LSTM cannot run this model, or None where it can.

    The twin of torch's ``onednn_refusal``: the sentence is what ``resolve_path`` puts in
    ``PathUnavailable`` (``on``) and what the model keeps as ``path_reason`` (``auto``). Ragged
    batches, bidirectional, stacked layers and dropout between layers all run (see the module
    docstring), so only the cell, the device and the dtype decide.
    """
    if cell != "lstm":
        return f"jax.experimental.rnn provides an LSTM only, not {cell}"
    if device != "cuda":
        return f"jax.experimental.rnn's cuDNN kernel has a CUDA lowering only, not {device}"
    if precision not in CUDNN_PRECISIONS:
        return f"jax.experimental.rnn's cuDNN LSTM computes in float32 only (float32 or tf32), not {precision}"
    return None


def cudnn_precision() -> jax.lax.Precision:
    """The one precision specifier cuDNN's RNN takes, from the matmul precision the model traces under
    (``jax_impl.layers.matmul_precision``: float32 -> ``highest``, tf32 -> ``default``).

    ``highest`` (true float32): HIGHEST, cuDNN's FMA math, TF32 off. Anything lower is what XLA does
    with a float32 matmul on the GPU anyway, TF32: HIGH (DEFAULT would ask cuDNN for bfloat16, which
    ``jax.experimental.rnn`` refuses).
    """
    setting = jax.config.jax_default_matmul_precision
    if setting is None:
        return jax.lax.Precision.HIGH
    try:
        named = jax.lax.Precision(setting)
    except ValueError as exc:  # a DotAlgorithmPreset name: nothing cuDNN's one flag could honour
        raise ValueError(f"cuDNN's LSTM takes a TF32 on/off switch, not the matmul algorithm {setting!r}") from exc
    return jax.lax.Precision.HIGHEST if named == jax.lax.Precision.HIGHEST else jax.lax.Precision.HIGH


def pack_lstm_weights(layers: Sequence[Sequence[LSTMWeights]]) -> Array:
    """``layers[l][d]``, torch's parameters of layer l, direction d -> cuDNN's flat weight vector.

    cuDNN counts a bidirectional LSTM as 2L pseudo-layers, forward-l then reverse-l (index
    2 * l + d, the order of torch's h_n). The vector is every pseudo-layer's W_ih then W_hh
    (row-major, (4H, in) and (4H, H)), then every pseudo-layer's b_ih then b_hh:
    (W_ih^0, W_hh^0, W_ih^1, W_hh^1, ..., b_ih^0, b_hh^0, b_ih^1, b_hh^1, ...), as
    ``rnn._get_params_shapes_in_lstm`` and ``rnn.unpack_lstm_weights`` lay it out.

    Gate order: NO conversion. cuDNN's CUDNN_LSTM matrices 0..3 (input side) and 4..7 (recurrent
    side) are the input, forget, new-memory (c') and output gates, i.e. torch's row blocks i, f, g, o,
    which is also the order of ``rnn.lstm_ref``'s ``jnp.split(W, 4)``. (MIOpen orders them
    differently; ``rnn.swap_lstm_gates`` is for ROCm, which this path does not target.)
    """
    mats: list[Array] = []
    biases: list[Array] = []
    for directions in layers:
        for w_ih, w_hh, b_ih, b_hh in directions:
            mats += [w_ih.reshape(-1), w_hh.reshape(-1)]  # (4H*in,), (4H*H,): row-major, rows = gate units
            biases += [b_ih, b_hh]  # (4H,) each: double bias, never merged
    return jnp.concatenate(mats + biases)  # (get_num_params_in_lstm(...),)


def lstm_kernel(
    x: Array,
    h_0: Array,
    c_0: Array,
    weights: Array,
    seq_lengths: Array,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    bidirectional: bool,
    precision: jax.lax.Precision,
) -> tuple[Array, Array, Array]:
    """``rnn.lstm`` (cuDNN), after checking that this jaxlib has the CUDA RNN kernel at all (without it
    ``rnn.lstm`` fails in abstract evaluation with an AttributeError that names nothing)."""
    if getattr(rnn.gpu_rnn, "compute_rnn_workspace_reserve_space_sizes", None) is None:
        raise RuntimeError("this jaxlib has no CUDA RNN kernel (jax_cuda12_plugin's _rnn): install jax[cuda12]")
    return rnn.lstm(
        x,
        h_0,
        c_0,
        weights,
        seq_lengths,
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        dropout=dropout,
        bidirectional=bidirectional,
        precision=precision,
    )


def lstm_ref_kernel(
    x: Array,
    h_0: Array,
    c_0: Array,
    weights: Array,
    seq_lengths: Array,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    bidirectional: bool,
    precision: Any = None,
) -> tuple[Array, Array, Array]:
    """``rnn.lstm``'s signature over ``rnn.lstm_ref``: the same flat weights unpacked by jax's own
    ``unpack_lstm_weights``, pure JAX (any device, any float dtype). ``precision`` is cuDNN's flag
    and means nothing here (lstm_ref's matmuls run under the ambient matmul precision)."""
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
    return rnn.lstm_ref(
        x, h_0, c_0, w_ih, w_hh, b_ih, b_hh, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional
    )


def lstm_layers(
    x: Array,
    lengths: Array,
    layers: Sequence[Sequence[LSTMWeights]],
    *,
    precision: jax.lax.Precision,
    kernel: Kernel | None = None,
) -> tuple[Array, Array, Array]:
    """Stacked LSTM layers (no dropout between them) in one cuDNN call, zero initial state.

    x (B, T, I), lengths (B,) >= 1; ``layers[l][d]`` as in :func:`pack_lstm_weights`. Returns the
    last layer's outputs (B, T, D*H) in each sequence's own time order, zero at padded steps, and
    h_n, c_n (L*D, B, H) at each sequence's length. The encoder's other paths take each direction's
    input pre-reversed (``scan_layer``); cuDNN reverses within each length itself, so this takes
    the layer input as it is. ``kernel``: ``rnn.lstm``'s signature, default :func:`lstm_kernel`
    (looked up at call time).
    """
    kernel = lstm_kernel if kernel is None else kernel
    batch, input_size = x.shape[0], x.shape[2]
    num_layers, dirs = len(layers), len(layers[0])
    hidden = layers[0][0][1].shape[1]
    zeros = jnp.zeros((num_layers * dirs, batch, hidden), x.dtype)  # (L*D, B, H)
    y, h_n, c_n = kernel(
        x,
        zeros,
        zeros,
        pack_lstm_weights(layers),
        lengths.astype(jnp.int32),  # rnn.lstm and lstm_ref refuse any other dtype
        input_size=int(input_size),  # static: Python ints and bools, never traced values
        hidden_size=int(hidden),
        num_layers=int(num_layers),
        dropout=0.0,  # ours is applied between calls (module docstring)
        bidirectional=dirs == 2,
        precision=precision,
    )
    return y, h_n, c_n  # (B, T, D*H), (L*D, B, H), (L*D, B, H)
