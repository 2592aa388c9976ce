"""Seq2Seq LSTM encoder-decoder on sliding windows (Malhotra et al. 2016, EncDec-AD)."""

from __future__ import annotations

from typing import Any

from detectors.deep.base import TorchDetector

__all__ = ["Seq2SeqLSTM"]


def _seq_net(channels: int, hidden: int, layers: int) -> Any:
    import torch
    from torch import nn

    class _S2S(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.LSTM(channels, hidden, num_layers=layers, batch_first=True)
            self.decoder = nn.LSTM(channels, hidden, num_layers=layers, batch_first=True)
            self.out = nn.Linear(hidden, channels)

        def forward(self, x: Any) -> Any:
            # Encode the window into the final state; decode it in reverse order with the
            # decoder fed its own previous target (teacher forcing in training, and at
            # inference the shifted input too: the window is entirely observed, so this is
            # still reconstruction, with no look-ahead beyond the window).
            _, state = self.encoder(x)
            rev = torch.flip(x, dims=[1])
            dec_in = torch.cat([torch.zeros_like(rev[:, :1]), rev[:, :-1]], dim=1)
            h, _ = self.decoder(dec_in, state)
            return torch.flip(self.out(h), dims=[1])

    return _S2S()


class Seq2SeqLSTM(TorchDetector):
    """LSTM encoder-decoder reconstructing a window; score = squared reconstruction error.

    **Input layout:** each row is one flattened window of ``window`` time steps x
    ``n_channels`` channels, time-major (``[t0c0, t0c1, ..., t1c0, ...]``), i.e. what
    ``windowing``'s sliding windows produce; ``n_channels=1`` (default) makes a row of
    ``d`` features a univariate sequence of length ``d``. :meth:`explain` gives the squared
    error per time step and channel (which part of the window was not reproduced).

    Parameters
    ----------
    n_channels
        Channels per time step (``d`` must be a multiple).
    hidden_size, num_layers
        LSTM size.
    epochs, batch_size, lr, weight_decay, validation_fraction, patience, random_state,
    device, progress
        As in :class:`~detectors.deep.autoencoder.Autoencoder`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(12)
    >>> phase = rng.uniform(0, 2 * np.pi, size=(300, 1))
    >>> X = np.sin(t / 2 + phase) + 0.05 * rng.normal(size=(300, 12))
    >>> det = Seq2SeqLSTM(hidden_size=8, epochs=10).fit(X)
    >>> bad = np.sin(t / 2 + 1.0); bad[6] += 3
    >>> det.score_one(np.sin(t / 2 + 1.0)) < det.score_one(bad)
    True
    """

    name = "seq2seq_lstm"

    def __init__(self, n_channels: int = 1, hidden_size: int = 32, num_layers: int = 1,
                 epochs: int = 60, batch_size: int = 128, lr: float = 3e-3,
                 weight_decay: float = 0.0, validation_fraction: float = 0.1,
                 patience: int = 6, random_state: int | None = 0, device: str = "auto",
                 progress: bool | None = None) -> None:
        self.n_channels = n_channels
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"epochs": 3, "batch_size": 64, "hidden_size": 4}

    def _build_module(self, d: int) -> Any:
        if d % self.n_channels:
            raise ValueError(f"{d} features is not a whole number of {self.n_channels}-channel "
                             "time steps")
        return _seq_net(self.n_channels, self.hidden_size, self.num_layers)

    def _as_seq(self, xb: Any) -> Any:
        return xb.reshape(len(xb), -1, self.n_channels)

    def _loss(self, module: Any, xb: Any) -> Any:
        seq = self._as_seq(xb)
        return ((module(seq) - seq) ** 2).mean()

    def _row_errors(self, module: Any, xb: Any) -> Any:
        seq = self._as_seq(xb)
        return ((module(seq) - seq) ** 2).reshape(len(xb), -1)
