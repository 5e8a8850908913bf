"""Quality of quantized graphs, for the tests and the benchmarks (not shipped: the exporter does not need them).

- ``logits_metrics``: relative error, KL divergence and argmax agreement of two logits tensors;
- ``audio_snr_db`` and ``multi_resolution_stft_distance``: a decoded signal against a reference one.
"""

from __future__ import annotations

import numpy as np


def logits_metrics(ref: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """rel = |q - ref| / |ref|; kl = mean over positions of KL(softmax ref || softmax q); argmax agreement."""
    ref64, q64 = ref.astype(np.float64), q.astype(np.float64)
    log_p = ref64 - ref64.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    log_q = q64 - q64.max(-1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(-1, keepdims=True))
    return {
        "rel": float(np.linalg.norm(q64 - ref64) / np.linalg.norm(ref64)),
        "kl": float((np.exp(log_p) * (log_p - log_q)).sum(-1).mean()),
        "argmax": float((ref.argmax(-1) == q.argmax(-1)).mean()),
    }


STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (FFT size = Hann window length, hop)


def audio_snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """10 log10(|ref|^2 / |test - ref|^2) over all samples (inf when equal)."""
    ref64, test64 = np.asarray(ref, np.float64).ravel(), np.asarray(test, np.float64).ravel()
    if ref64.shape != test64.shape:
        raise ValueError(f"audio shapes differ: {np.shape(ref)} vs {np.shape(test)}")
    noise = float(np.sum((test64 - ref64) ** 2))
    return float("inf") if noise == 0.0 else float(10.0 * np.log10(float(np.sum(ref64**2)) / noise))


def _stft_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1))


def multi_resolution_stft_distance(ref: np.ndarray, test: np.ndarray, eps: float = 1e-7) -> float:
    """Mean over ``STFT_RESOLUTIONS`` of spectral convergence ``|S_t - S_r|_F / |S_r|_F`` plus the mean absolute
    log10 magnitude difference (the multi-resolution STFT loss of Parallel WaveGAN / auraloss, in numpy; 0 when
    equal). Mono or [..., N] audio, flattened."""
    r, t = np.asarray(ref, np.float64).ravel(), np.asarray(test, np.float64).ravel()
    if r.shape != t.shape:
        raise ValueError(f"audio shapes differ: {np.shape(ref)} vs {np.shape(test)}")
    total = 0.0
    for n_fft, hop in STFT_RESOLUTIONS:
        s_r, s_t = _stft_magnitude(r, n_fft, hop), _stft_magnitude(t, n_fft, hop)
        convergence = np.linalg.norm(s_t - s_r) / max(float(np.linalg.norm(s_r)), eps)
        log_mag = float(np.mean(np.abs(np.log10(s_t + eps) - np.log10(s_r + eps))))
        total += float(convergence) + log_mag
    return total / len(STFT_RESOLUTIONS)
