"""``tiny_diffusion``: the built-in text-to-music diffusion model, small enough to train on a CPU.

No pretrained text-to-music weights can be fetched offline, so the project
trains its own on its procedural corpus (``finetune pretrain``) and commits
the checkpoint (``finetune/assets/tiny_diffusion/``). It is a real, if small,
latent-free diffusion model, and it implements :class:`finetune.adapter.DiffusionAdapter`.

Representation ("latents")
    Normalised log-mel frames of a fixed-length clip. 16 kHz mono audio is
    zero-padded (or cut) to ``n_frames * hop_length`` samples (default 250 x
    256 = 64000, 4 s), analysed with a 1024-point Hann STFT every 256 samples
    (``center=True`` with zero padding; the last of the 251 frames is dropped),
    mapped to 64 Slaney mel bands (0-8 kHz, :func:`rewardkit.encoders.mel.mel_filterbank`)
    and stored as ``(log(mel_power + log_floor) - latent_mean) / latent_std``.
    A latent is (64, 250): bands are channels, frames are time (62.5 frames/s).
    Padding is silence, so a short clip ends in frames at the log floor.
    ``latent_mean`` / ``latent_std`` are two scalars measured on the training
    corpus by ``pretrain`` (so the data have unit variance, as the noise does).

Network
    A 1-D U-Net over time (:class:`TinyUNet`): three levels (default 64, 128,
    192 channels, two residual blocks each, stride-2 downsampling), self-attention
    at the bottom (1/4 of the frame rate, whole-clip context; content-only, or
    with rotary positions when ``rope_base`` > 0), nearest
    upsampling and skip concatenation. Every residual block is FiLM-modulated
    by one embedding vector: MLP(sinusoidal(t)) + MLP(caption), where the
    caption is the 384-d all-MiniLM-L6-v2 sentence embedding
    (:class:`rewardkit.text.MiniLM`). A caption of all zeros means "no prompt"
    and is replaced by a learned null embedding (classifier-free guidance,
    Ho & Salimans 2022; ``pretrain`` zeroes 10 % of the captions). With
    ``beat_harmonics`` > 0 the network also has a beat grid: a tempo head
    (MLP) reads log2(BPM / 120) off the caption embedding, and cos/sin
    channels cycling 1/4, 1/2, 1, 2, 4 ... times per beat at that tempo, with
    phase 0 at the clip's start, join the log-mel input (:func:`beat_grid`).
    Pretraining feeds the grid the corpus's real tempi and fits the head to
    them; sampling, and fine-tuning, use the head's tempo, for both guidance
    branches. A global FiLM vector cannot easily make a convolutional
    network emit onsets at a given period; a grid to align them to can. 3.67 M
    parameters by default (14.7 MB in float32). No dropout, no batch norm: the same weights
    on the same input give the same output in train and eval mode, which the
    DPO reference comparison relies on.

Diffusion
    Continuous time t in [0, 1] with the cosine schedule of Nichol & Dhariwal
    (2021), ``alpha_t = cos(pi/2 (t+s)/(1+s)) / cos(pi/2 s/(1+s))``, s = 0.008,
    ``sigma_t = sqrt(1 - alpha_t^2)``; z_t = alpha_t x + sigma_t eps. alpha_1 = 0
    exactly (zero terminal SNR), which v-prediction handles without division.
    ``schedule_shift`` k divides the SNR by k^2 at every t (Hoogeboom et al.
    2023); k = 1, the plain cosine schedule, is the default.
    The network predicts v = alpha_t eps - sigma_t x (Salimans & Ho 2022); the
    training target of :meth:`TinyDiffusion.per_sample_loss` is v, and the loss
    is mean((v_hat - v)^2) over the 64 x 250 latent entries, t ~ U(0, 1).

Sampler
    Deterministic DDIM (Song et al. 2021, eta = 0) on the uniform grid
    t_k = k / steps, k = steps ... 0, with classifier-free guidance
    v_hat = v_uncond + w (v_cond - v_uncond). The initial noise of each sample
    comes from its own generator seeded by its seed; nothing else is random.
    On the CPU a sample is bit-identical whatever batch it is drawn in: each
    prompt is embedded alone, the embedding MLPs run row by row
    (:class:`RowLinear`) and a batch of one is run as two (convolutions round
    the same for every batch of two or more). On CUDA, cuDNN may choose
    batch-size-dependent kernels: expect float32 rounding-level differences.

Decoder
    log-mel -> mel power -> linear power spectrogram by non-negative least
    squares against the mel filterbank (multiplicative updates of Lee & Seung,
    from a pseudo-inverse start) -> magnitude -> fast Griffin-Lim (Perraudin
    et al. 2013, momentum 0.99) from zero phase, so decoding is deterministic.
    Output: float32 mono at 16 kHz, ``n_frames * hop_length`` samples (4.0 s),
    clipped to [-1, 1].
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rewardkit._version import __version__
from rewardkit.encoders.mel import mel_filterbank
from rewardkit.errors import InputError

from ..adapter import CheckpointError, check_seeds

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny_diffusion"
TIME_FEATURES = 128


# ---------------------------------------------------------------- network
def timestep_features(t: torch.Tensor, dim: int = TIME_FEATURES) -> torch.Tensor:
    """Sinusoidal features of continuous times [shape=(n,)] -> [shape=(n, dim)] (Vaswani et al. 2017).

    t in [0, 1] is scaled by 1000 so that the frequencies span the same range
    as for the usual 1000 discrete steps.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _groups(channels: int) -> int:
    return math.gcd(channels, 16) or 1


class RowLinear(nn.Linear):
    """``nn.Linear`` applied one row at a time, so a row's result does not depend on the batch around it.

    A BLAS matrix product blocks its rows by the batch size, and the rounding of
    row i changes with it (~1e-7 relative); in a 40-step sampler that grows to
    ~1e-5. These layers act on (n, emb) vectors only, and the network has five
    of them (all FiLM projections are one layer), so the row loop costs little
    next to the convolutions. Same parameters and state-dict keys as nn.Linear.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.linear(row, self.weight, self.bias) for row in x.split(1)])


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, FiLM, GroupNorm-SiLU-Conv, plus a residual path.

    The FiLM scale and shift [shape=(n, 2 c_out)] come from the network's
    shared projection of the time + caption embedding (:attr:`film_width` columns).
    """

    def __init__(self, c_in: int, c_out: int, dilation: int = 1):
        super().__init__()
        self.film_width = 2 * c_out
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=dilation, dilation=dilation)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        # Zero-initialised last conv: each block starts as the identity, so a deep stack trains from step one.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = film.unsqueeze(-1).chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift                     # FiLM (Perez et al. 2018)
        return self.skip(x) + self.conv2(F.silu(h))


def rotate_positions(x: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) of x [shape=(..., t, d)], d even, positions 0 .. t-1.

    Channel pair (i, i + d/2) of position p is rotated by the angle p * base**(-2i/d),
    so a query-key product depends on the two positions only through their offset.
    """
    t, d = x.shape[-2:]
    freqs = base ** (-torch.arange(0, d // 2, device=x.device, dtype=torch.float32) * 2 / d)
    angles = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * freqs[None, :]   # (t, d/2)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    a, b = x[..., :d // 2], x[..., d // 2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


#: Reference tempo of the tempo head's output: it predicts log2(bpm / REFERENCE_BPM).
REFERENCE_BPM = 120.0


def beat_grid(bpm: torch.Tensor, n_frames: int, frame_seconds: float, harmonics: int) -> torch.Tensor:
    """Sinusoidal beat grid [shape=(n, 2 harmonics, n_frames)] for tempi bpm [shape=(n,)].

    Frame f is at f * frame_seconds; harmonic k (0 .. harmonics-1) cycles
    2**(k - 2) times a beat (bars of four beats, half bars, beats, eighths,
    sixteenths for 5), as a cos and a sin channel with phase 0 at the clip's
    start, where a clip of the corpus has its first beat.
    """
    times = torch.arange(n_frames, device=bpm.device, dtype=torch.float32) * frame_seconds
    cycles = 2.0 ** (torch.arange(harmonics, device=bpm.device, dtype=torch.float32) - 2)
    phase = 2 * math.pi * (bpm.float() / 60.0)[:, None, None] * cycles[None, :, None] * times[None, None, :]
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=1)


class SelfAttention(nn.Module):
    """Multi-head self-attention over time, pre-norm, residual; written out (no mode-dependent fast path).

    With ``rope_base`` > 0 the queries and keys carry rotary positions
    (:func:`rotate_positions`), so attention can tell how far apart two frames
    are (what a steady beat is made of); with 0 it sees content only.
    """

    def __init__(self, channels: int, heads: int, rope_base: float = 0.0):
        super().__init__()
        if channels % heads:
            raise InputError(f"attention_heads: {heads} does not divide {channels} channels")
        if rope_base and (channels // heads) % 2:
            raise InputError(f"rope_base: rotary positions need an even width per head, got {channels} channels "
                             f"in {heads} heads")
        self.heads = heads
        self.rope_base = float(rope_base)
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, t).transpose(-1, -2).unbind(1)
        if self.rope_base:
            q, k = rotate_positions(q, self.rope_base), rotate_positions(k, self.rope_base)
        h = F.scaled_dot_product_attention(q, k, v)                  # (n, heads, t, c/heads)
        return x + self.out(h.transpose(-1, -2).reshape(n, c, t))


class TinyUNet(nn.Module):
    """1-D U-Net that predicts v from a noisy latent, the time and the caption embedding.

    Parameters
    ----------
    n_mels : int
        Input/output channels (mel bands).
    channels : sequence of int
        Width of each level; level i runs at 1/2**i of the frame rate.
    blocks_per_level : int
        Residual blocks per level on the way down (and up).
    emb_dim : int
        Width of the time + caption embedding that drives FiLM.
    text_dim : int
        Caption embedding size (384 for MiniLM).
    attention_heads : int
        Heads of the self-attention at the bottom level (0: none).
    rope_base : float
        Base of the attention's rotary positions (0: none, content-only attention).
    beat_harmonics : int
        0: no beat grid. Otherwise a tempo head predicts log2(bpm / 120) from the
        caption embedding and :func:`beat_grid` at that tempo (``beat_harmonics``
        cos/sin pairs) joins the input as extra channels.
    frame_seconds : float
        Time between frames (hop / sample rate), for the beat grid.
    """

    def __init__(self, n_mels: int, channels: tuple[int, ...], blocks_per_level: int, emb_dim: int,
                 text_dim: int, attention_heads: int, rope_base: float = 0.0, beat_harmonics: int = 0,
                 frame_seconds: float = 0.016):
        super().__init__()
        self.beat_harmonics = int(beat_harmonics)
        self.frame_seconds = float(frame_seconds)
        if self.beat_harmonics:
            self.tempo_head = nn.Sequential(RowLinear(text_dim, emb_dim), nn.SiLU(), RowLinear(emb_dim, 1))
        self.time_mlp = nn.Sequential(RowLinear(TIME_FEATURES, emb_dim), nn.SiLU(), RowLinear(emb_dim, emb_dim))
        self.text_mlp = nn.Sequential(RowLinear(text_dim, emb_dim), nn.SiLU(), RowLinear(emb_dim, emb_dim))
        # Learned "no prompt" embedding, used wherever the caption row is all zeros (CFG's unconditional branch).
        self.null_text = nn.Parameter(torch.zeros(text_dim))
        self.inp = nn.Conv1d(n_mels + 2 * self.beat_harmonics, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c_prev = channels[0]
        for i, c in enumerate(channels):
            # Dilations 1, 2, ... widen the receptive field within a level at no extra cost.
            self.down.append(nn.ModuleList(ResBlock(c_prev if b == 0 else c, c, dilation=2 ** b)
                                           for b in range(blocks_per_level)))
            c_prev = c
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv1d(c, c, 3, stride=2, padding=1))
        self.mid1 = ResBlock(c_prev, c_prev)
        self.attn = SelfAttention(c_prev, attention_heads, rope_base) if attention_heads else nn.Identity()
        self.mid2 = ResBlock(c_prev, c_prev)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(channels))):
            c = channels[i]
            self.up.append(nn.ModuleList(ResBlock(c_prev + c if b == 0 else c, c)
                                         for b in range(blocks_per_level)))
            c_prev = c
            if i > 0:
                self.upsample.append(nn.Conv1d(c, channels[i - 1], 3, padding=1))
                c_prev = channels[i - 1]
        self.out_norm = nn.GroupNorm(_groups(channels[0]), channels[0])
        self.out = nn.Conv1d(channels[0], n_mels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # Every block's FiLM parameters from one projection; modules() lists the blocks in the order forward calls them.
        self._film_widths = [m.film_width for m in self.modules() if isinstance(m, ResBlock)]
        self.film = RowLinear(emb_dim, sum(self._film_widths))

    def _text(self, text: torch.Tensor) -> torch.Tensor:
        is_null = (text == 0).all(dim=1, keepdim=True)
        return torch.where(is_null, self.null_text.to(text.dtype).expand_as(text), text)

    def predict_bpm(self, text: torch.Tensor) -> torch.Tensor:
        """The tempo head's tempo for each caption embedding [shape=(n,)], in BPM (beat grid models only)."""
        return REFERENCE_BPM * torch.exp2(self.tempo_head(self._text(text))[:, 0])

    def forward(self, z: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                bpm: torch.Tensor | None = None) -> torch.Tensor:
        """v-prediction [shape=(n, n_mels, frames)] for z [same shape], t [shape=(n,)], text [shape=(n, text_dim)].

        ``bpm`` [shape=(n,)] sets the beat grid's tempo (pretraining passes the
        corpus's; default: :meth:`predict_bpm` of ``text``); ignored without a grid.
        Batch-invariant on the CPU: a sample's output is the same, bit for bit,
        in any batch (see :class:`RowLinear`; convolutions give the same
        result for every batch of two or more, so a batch of one is run as two).
        """
        if z.shape[0] == 1:
            return self.forward(z.expand(2, -1, -1), t.expand(2), text.expand(2, -1),
                                None if bpm is None else bpm.expand(2))[:1]
        if self.beat_harmonics:
            bpm = self.predict_bpm(text) if bpm is None else bpm
            z = torch.cat([z, beat_grid(bpm, z.shape[-1], self.frame_seconds, self.beat_harmonics).to(z.dtype)], 1)
        text = self._text(text)
        emb = F.silu(self.time_mlp(timestep_features(t)) + self.text_mlp(text))
        films = iter(self.film(emb).split(self._film_widths, dim=1))
        h = self.inp(z)
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, next(films))
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.mid1(h, next(films))
        h = self.mid2(self.attn(h), next(films))
        for level, blocks in enumerate(self.up):
            skip = skips.pop()
            h = torch.cat([h, skip], dim=1)
            for block in blocks:
                h = block(h, next(films))
            if level < len(self.upsample):
                # Nearest upsampling to the skip's exact length: odd lengths (250 -> 125 -> 63) round-trip.
                h = F.interpolate(h, size=skips[-1].shape[-1], mode="nearest")
                h = self.upsample[level](h)
        return self.out(F.silu(self.out_norm(h)))


# ---------------------------------------------------------------- text conditioning
@functools.lru_cache(maxsize=1)
def _minilm():
    # One MiniLM for the whole process: loading it costs seconds, every adapter can share it. It runs on the
    # CPU whatever the model's device, so a prompt's embedding (hence its samples) is the same on every machine.
    from rewardkit.text import MiniLM

    return MiniLM(device="cpu")


# ---------------------------------------------------------------- the adapter
class TinyDiffusion:
    """The built-in text-to-music diffusion model and its adapter (see the module docstring).

    Every keyword argument is part of the saved config (``config.json``);
    ``device`` is not.

    Parameters
    ----------
    sample_rate, n_fft, hop_length, n_mels, fmin, fmax :
        The log-mel analysis (16 kHz, 1024, 256, 64 bands, 0 Hz to Nyquist).
    n_frames : int
        Frames per clip (250: 4 s at hop 256).
    log_floor : float
        Added to the mel power before the log; silence maps to log(log_floor).
    latent_mean, latent_std : float
        Scalar normalisation of the log-mel (measured on the corpus by ``pretrain``).
    channels, blocks_per_level, emb_dim, text_dim, attention_heads, rope_base, beat_harmonics :
        The :class:`TinyUNet` (``rope_base`` 0, no rotary positions, and
        ``beat_harmonics`` 0, no beat grid, are what checkpoints saved before
        they existed mean).
    schedule_offset : float
        s of the cosine schedule.
    schedule_shift : float
        k of the shifted schedule (SNR / k^2, see :meth:`alpha_sigma`); 1, the
        plain cosine schedule, is what checkpoints saved before it existed mean.
    nnls_iters, griffin_lim_iters : int
        Decoder iterations (fixed, so decode is deterministic and its cost known).
    device : str or torch.device
        Where the network runs ("cpu" by default, "cuda" when asked).
    """

    name = "tiny_diffusion"
    #: The checkpoint ``load()`` uses when given no folder (shipped inside the package).
    default_checkpoint = ASSET_DIR
    #: Bumped when the meaning of saved weights or config changes.
    code_version = 1

    def __init__(self, *, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 64,
                 fmin: float = 0.0, fmax: float | None = None, n_frames: int = 250, log_floor: float = 1e-5,
                 latent_mean: float = -7.65, latent_std: float = 4.3,
                 channels: tuple[int, ...] | list[int] = (64, 128, 192), blocks_per_level: int = 2,
                 emb_dim: int = 256, text_dim: int = 384, attention_heads: int = 4, rope_base: float = 0.0,
                 beat_harmonics: int = 0, schedule_offset: float = 0.008, schedule_shift: float = 1.0,
                 nnls_iters: int = 30, griffin_lim_iters: int = 32,
                 device: str | torch.device = "cpu"):
        fmax = sample_rate / 2 if fmax is None else float(fmax)
        if not 0 <= fmin < fmax <= sample_rate / 2:
            raise InputError(f"fmin/fmax: need 0 <= fmin < fmax <= {sample_rate / 2}, got {fmin}, {fmax}")
        if n_frames < 4 or latent_std <= 0 or log_floor <= 0:
            raise InputError(f"n_frames >= 4, latent_std > 0 and log_floor > 0 needed, got {n_frames}, "
                             f"{latent_std}, {log_floor}")
        if not 0 <= beat_harmonics <= 8:
            raise InputError(f"beat_harmonics: need 0 (no beat grid) to 8, got {beat_harmonics}")
        if not schedule_shift > 0:
            raise InputError(f"schedule_shift: need a positive number, got {schedule_shift}")
        channels = [int(c) for c in channels]
        self.config: dict[str, Any] = {
            "sample_rate": int(sample_rate), "n_fft": int(n_fft), "hop_length": int(hop_length),
            "n_mels": int(n_mels), "fmin": float(fmin), "fmax": fmax, "n_frames": int(n_frames),
            "log_floor": float(log_floor), "latent_mean": float(latent_mean), "latent_std": float(latent_std),
            "channels": channels, "blocks_per_level": int(blocks_per_level), "emb_dim": int(emb_dim),
            "text_dim": int(text_dim), "attention_heads": int(attention_heads),
            "rope_base": float(rope_base), "beat_harmonics": int(beat_harmonics),
            "schedule_offset": float(schedule_offset),
            "schedule_shift": float(schedule_shift), "nnls_iters": int(nnls_iters),
            "griffin_lim_iters": int(griffin_lim_iters)}
        self.sample_rate = int(sample_rate)
        self.device = torch.device(device)
        self.net = TinyUNet(n_mels, tuple(channels), blocks_per_level, emb_dim, text_dim, attention_heads,
                            rope_base, beat_harmonics, hop_length / sample_rate).to(self.device)
        self.reference: TinyUNet | None = None
        #: Rank of the LoRA adapters (0: full fine-tune), see :meth:`enable_lora`.
        self.lora_rank = 0
        #: Training record of the loaded checkpoint (``config.json["training"]``), empty for a fresh model.
        self.training: dict[str, Any] = {}
        self._prompt_cache: dict[str, torch.Tensor] = {}
        basis = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).astype(np.float32)
        self._basis = torch.from_numpy(basis).to(self.device)                    # (n_mels, bins)
        self._basis_pinv = torch.from_numpy(np.linalg.pinv(basis)).to(self.device)  # (bins, n_mels)
        self._window = torch.hann_window(n_fft, periodic=True, device=self.device)

    # ------------------------------------------------------------ properties
    @property
    def latent_shape(self) -> tuple[int, int]:
        """(n_mels, n_frames)."""
        return self.config["n_mels"], self.config["n_frames"]

    @property
    def num_samples(self) -> int:
        """Length of every decoded clip in samples (n_frames * hop_length)."""
        return self.config["n_frames"] * self.config["hop_length"]

    def to(self, device: str | torch.device) -> TinyDiffusion:
        """Move the networks and DSP tensors to ``device`` (in place); returns self."""
        self.device = torch.device(device)
        self.net.to(self.device)
        if self.reference is not None:
            self.reference.to(self.device)
        self._basis, self._basis_pinv, self._window = (x.to(self.device) for x in
                                                       (self._basis, self._basis_pinv, self._window))
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # ------------------------------------------------------------ audio <-> latents
    def log_mel(self, audio: list[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Un-normalised log-mel of each clip [shape=(n, n_mels, n_frames)], on ``device``.

        Each clip (mono float, at ``sample_rate``) is zero-padded or cut to
        :attr:`num_samples` first, so every clip gives exactly ``n_frames`` frames.
        """
        if isinstance(audio, np.ndarray) and audio.ndim == 1:
            audio = [audio]
        length = self.num_samples
        batch = np.zeros((len(audio), length), np.float32)
        for i, clip in enumerate(audio):
            clip = np.asarray(clip, dtype=np.float32)
            if clip.ndim != 1:
                raise InputError(f"audio[{i}]: expected a mono 1-D array, got shape {clip.shape}")
            batch[i, :min(length, clip.size)] = clip[:length]
        x = torch.from_numpy(batch).to(self.device)
        spec = torch.stft(x, n_fft=self.config["n_fft"], hop_length=self.config["hop_length"], window=self._window,
                          center=True, pad_mode="constant", return_complex=True)[..., :self.config["n_frames"]]
        power = spec.real.square() + spec.imag.square()                          # (n, bins, frames)
        return torch.log(torch.matmul(self._basis, power) + self.config["log_floor"])

    def normalise(self, log_mel: torch.Tensor) -> torch.Tensor:
        return (log_mel - self.config["latent_mean"]) / self.config["latent_std"]

    def denormalise(self, latents: torch.Tensor) -> torch.Tensor:
        return latents * self.config["latent_std"] + self.config["latent_mean"]

    def audio_to_latents(self, audio: list[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Clean latents [shape=(n, n_mels, n_frames)] of audio clips (the inverse of :meth:`decode`, up to phase)."""
        return self.normalise(self.log_mel(audio))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> list[np.ndarray]:
        """Audio of each latent [shape=(n, n_mels, n_frames)]: n float32 arrays of :attr:`num_samples` samples.

        mel power -> linear power by NNLS, then fast Griffin-Lim from zero phase
        (see the module docstring). Deterministic: the same latents give the
        same audio bit for bit on a given device.
        """
        latents = torch.as_tensor(latents, dtype=torch.float32).to(self.device)
        if latents.ndim != 3 or tuple(latents.shape[1:]) != self.latent_shape:
            raise InputError(f"latents: expected shape (n, {self.latent_shape[0]}, {self.latent_shape[1]}), "
                             f"got {tuple(latents.shape)}")
        mel = (torch.exp(self.denormalise(latents)) - self.config["log_floor"]).clamp(min=0.0)
        power = self._mel_to_linear(mel)
        # center=True framing of num_samples samples has n_frames + 1 frames: repeat the last one.
        magnitude = torch.cat([power, power[..., -1:]], dim=-1).sqrt()
        audio = self._griffin_lim(magnitude)
        return [a for a in audio.clamp(-1.0, 1.0).cpu().numpy().astype(np.float32)]

    def _mel_to_linear(self, mel: torch.Tensor) -> torch.Tensor:
        """Non-negative S minimising ||B S - mel||^2 (B: the mel filterbank) [shape=(n, bins, frames)].

        Lee & Seung's multiplicative update for NNLS,
            S <- S * (B^T mel) / (B^T B S + delta),
        keeps S >= 0 and never increases the error; it starts from the clipped
        pseudo-inverse max(B^+ mel, 0) (plus a little so no bin is stuck at 0).
        """
        basis = self._basis
        s = torch.matmul(self._basis_pinv, mel).clamp(min=0.0) + 1e-3 * mel.mean(dim=1, keepdim=True)
        numerator = torch.matmul(basis.T, mel)
        for _ in range(self.config["nnls_iters"]):
            # B^T (B S) rather than (B^T B) S: two thin products instead of one bins x bins one.
            s = s * numerator / (torch.matmul(basis.T, torch.matmul(basis, s)) + 1e-12)
        return s

    def _griffin_lim(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Fast Griffin-Lim (Perraudin, Balazs & Sondergaard 2013) [shape=(n, bins, frames)] -> (n, samples).

        With P_C the projection onto consistent spectrograms (iSTFT then STFT)
        and P_A the one onto the target magnitude A (keep the phase, set |.| = A):
            T_k     = P_A(P_C(c_{k-1}))
            c_k     = T_k + alpha (T_k - T_{k-1}),   alpha = 0.99
        from c_0 = A (zero phase, so the result is deterministic).
        """
        n_fft, hop = self.config["n_fft"], self.config["hop_length"]

        def istft(spec):
            return torch.istft(spec, n_fft=n_fft, hop_length=hop, window=self._window, center=True,
                               length=self.num_samples)

        def stft(x):
            return torch.stft(x, n_fft=n_fft, hop_length=hop, window=self._window, center=True,
                              pad_mode="constant", return_complex=True)

        c = magnitude.to(torch.complex64)
        previous = c
        for _ in range(self.config["griffin_lim_iters"]):
            rebuilt = stft(istft(c))
            projected = magnitude * rebuilt / rebuilt.abs().clamp(min=1e-8)
            c = projected + 0.99 * (projected - previous)
            previous = projected
        return istft(c)

    # ------------------------------------------------------------ conditioning
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """MiniLM sentence embeddings of the prompts [shape=(n, 384)], unit norm, on ``device``.

        A blank prompt gives the unconditional (all-zero) row of classifier-free
        guidance. Each distinct prompt is embedded on its own (and remembered),
        so its conditioning, and hence its samples, do not depend on which
        other prompts share the call: a batched transformer pass would pad and
        round differently.
        """
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise InputError("prompts: expected a list of strings")
        prompts = list(prompts)
        encoder = None
        for p in dict.fromkeys(prompts):
            if p.strip() and p not in self._prompt_cache:
                encoder = encoder or _minilm()
                if len(self._prompt_cache) >= 4096:
                    self._prompt_cache.clear()
                self._prompt_cache[p] = torch.from_numpy(encoder.embed([p])[0])
        out = torch.zeros(len(prompts), self.config["text_dim"])
        for i, p in enumerate(prompts):
            if p.strip():
                out[i] = self._prompt_cache[p]
        return out.to(self.device)

    # ------------------------------------------------------------ schedule
    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosine schedule (Nichol & Dhariwal 2021, eq. 17 as a continuous-time alpha):

            alpha_t = f(t) / f(0),  f(t) = cos(pi/2 (t + s) / (1 + s)),   sigma_t = sqrt(1 - alpha_t^2)

        computed in float64, with alpha_0 = 1 and alpha_1 = 0 exactly. With
        ``schedule_shift`` k != 1 the signal-to-noise ratio alpha^2 / sigma^2
        is divided by k^2 at every t (the shifted schedule of Hoogeboom et al.
        2023, "simple diffusion"): a latent of 64 x 250 strongly correlated
        entries keeps its coarse structure (beat, register) visible to much
        higher noise than one entry does, so the unshifted schedule decides
        that structure in the last few percent of t. Returns two tensors of
        t's shape, float32.
        """
        s = self.config["schedule_offset"]
        t64 = t.double()
        alpha = (torch.cos(0.5 * math.pi * (t64 + s) / (1 + s)) / math.cos(0.5 * math.pi * s / (1 + s)))
        # cos(pi/2) is 6e-17 in floating point; the schedule's end point is exactly pure noise.
        alpha = torch.where(t64 >= 1.0, 0.0, alpha.clamp(0.0, 1.0))
        sigma = (1.0 - alpha.square()).clamp(min=0.0).sqrt()
        k = self.config["schedule_shift"]
        if k != 1.0:
            # SNR / k^2 at every t; the end points (alpha 1 and 0) stay where they are.
            norm = (alpha.square() + (k * sigma).square()).sqrt()
            alpha, sigma = alpha / norm, k * sigma / norm
        return alpha.float(), sigma.float()

    def sample_timesteps(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n continuous times t ~ U(0, 1) [shape=(n,)], drawn on the CPU from ``generator``, moved to ``device``."""
        return torch.rand(n, generator=generator).to(self.device)

    # ------------------------------------------------------------ training loss
    def per_sample_loss(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                        cond: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """v-prediction MSE of each sample [shape=(n,)].

        z_t = alpha_t x + sigma_t eps,  v = alpha_t eps - sigma_t x,
        loss_i = mean over (mel, frame) of (v_hat(z_t, t, c) - v)^2.

        Parameters
        ----------
        latents, noise : torch.Tensor [shape=(n, n_mels, n_frames)]
            Clean latents x and the noise eps.
        timesteps : torch.Tensor [shape=(n,)]
            Continuous t in [0, 1] (from :meth:`sample_timesteps`).
        cond : torch.Tensor [shape=(n, 384)]
            From :meth:`encode_prompts`; zero rows are unconditional.
        reference : bool
            Use the frozen reference (:meth:`freeze_reference`) under ``no_grad``.
        """
        if reference:
            if self.lora_rank:
                from ..lora import disabled

                with torch.no_grad(), disabled(self.net):
                    return self._v_loss(self.net, latents, noise, timesteps, cond)
            if self.reference is None:
                raise InputError("reference=True: no reference yet; call freeze_reference() before training")
            with torch.no_grad():
                return self._v_loss(self.reference, latents, noise, timesteps, cond)
        return self._v_loss(self.net, latents, noise, timesteps, cond)

    def _v_loss(self, net, x, eps, t, cond, bpm: torch.Tensor | None = None) -> torch.Tensor:
        x, eps, t, cond = (a.to(self.device) for a in (x, eps, t, cond))
        alpha, sigma = (a[:, None, None] for a in self.alpha_sigma(t))
        z = alpha * x + sigma * eps
        target = alpha * eps - sigma * x
        return (net(z, t, cond, None if bpm is None else bpm.to(self.device)) - target).square().mean(dim=(1, 2))

    def pretrain_loss(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor, bpm: torch.Tensor | None = None) -> torch.Tensor:
        """Pretraining objective, a scalar: mean v-loss, plus the tempo head's loss with a beat grid.

        With a beat grid, the v-loss uses the clips' real tempi ``bpm`` [shape=(n,)]
        for the grid (teacher forcing), and the tempo head learns them from the
        captions: mean squared error of log2(bpm / 120) over the rows that have a
        caption. Without a grid, ``bpm`` is not needed and is ignored.
        """
        if not self.net.beat_harmonics:
            return self._v_loss(self.net, latents, noise, timesteps, cond).mean()
        if bpm is None:
            raise InputError("a beat grid model (beat_harmonics > 0) trains on the clips' tempi: pass bpm")
        bpm = bpm.to(self.device).float()
        loss = self._v_loss(self.net, latents, noise, timesteps, cond, bpm).mean()
        cond = cond.to(self.device)
        has_caption = ~(cond == 0).all(dim=1)
        if has_caption.any():
            predicted = self.net.tempo_head(cond[has_caption])[:, 0]
            loss = loss + (predicted - torch.log2(bpm[has_caption] / REFERENCE_BPM)).square().mean()
        return loss

    def trainable_parameters(self) -> list[nn.Parameter]:
        """All weights of the policy network (a full fine-tune), or only the LoRA matrices after :meth:`enable_lora`."""
        return [p for p in self.net.parameters() if p.requires_grad]

    def enable_lora(self, rank: int, alpha: float | None = None) -> None:
        """Train low-rank adapters instead of all weights (:mod:`finetune.lora`).

        Every Linear and Conv1d gets a rank-``rank`` update scaled by
        ``alpha / rank`` (alpha defaults to the rank); the base weights freeze.
        The reference is then the same network with the adapters switched off,
        and :meth:`save` writes the merged weights, an ordinary checkpoint.
        """
        from ..lora import inject

        inject(self.net, int(rank), alpha)
        self.lora_rank = int(rank)
        self.reference = None

    def freeze_reference(self) -> None:
        """Snapshot the policy as the frozen reference for ``per_sample_loss(reference=True)``.

        A deep copy with ``requires_grad=False``; call it once, before the first
        optimiser step (again later to move the reference). With LoRA there is
        nothing to copy: the reference is the network with its adapters off.
        """
        if self.lora_rank:
            return
        ref = copy.deepcopy(self.net)
        for p in ref.parameters():
            p.requires_grad_(False)
        self.reference = ref.eval()

    # ------------------------------------------------------------ sampling
    @torch.no_grad()
    def initial_noise(self, seeds: list[int]) -> torch.Tensor:
        """Each sample's z_1 from its own CPU generator [shape=(n, n_mels, n_frames)], on ``device``.

        Drawn on the CPU so that a seed gives the same noise on every device.
        """
        return torch.stack([torch.randn(self.latent_shape, generator=torch.Generator().manual_seed(s))
                            for s in seeds]).to(self.device)

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], steps: int = 40, guidance: float = 3.0, *,
                 cond: torch.Tensor | None = None, batch_size: int = 32) -> torch.Tensor:
        """Clean latents [shape=(n, n_mels, n_frames)] for each (prompt, seed), by guided DDIM.

        Parameters
        ----------
        prompts : list of str [length n]
        seeds : list of int [length n]
            Sample i's initial noise is ``torch.randn`` from a generator seeded
            with ``seeds[i]``; DDIM with eta = 0 adds no other noise, so a sample
            does not depend on its batch.
        steps : int
            DDIM steps on the uniform grid of t.
        guidance : float
            CFG scale w (1: conditional only, one network pass per step).
        cond : torch.Tensor [shape=(n, 384)], optional
            Precomputed :meth:`encode_prompts` (skips MiniLM).
        batch_size : int
            Samples per network pass (2x that with guidance != 1).
        """
        prompts, seeds = check_seeds(prompts, seeds)
        if steps < 1:
            raise InputError(f"steps: need at least 1, got {steps}")
        cond = self.encode_prompts(prompts) if cond is None else cond.to(self.device)
        if cond.shape[0] != len(seeds):
            raise InputError(f"cond: {cond.shape[0]} rows for {len(seeds)} seeds")
        noise = self.initial_noise(seeds)
        out = [self.ddim_sample(noise[i:i + batch_size], cond[i:i + batch_size], steps, guidance)
               for i in range(0, len(seeds), batch_size)]
        return torch.cat(out) if out else noise

    @torch.no_grad()
    def ddim_sample(self, noise: torch.Tensor, cond: torch.Tensor, steps: int, guidance: float) -> torch.Tensor:
        """Integrate from z_1 = noise to z_0 with deterministic DDIM (Song, Meng & Ermon 2021, eta = 0).

        One step from t to s < t on the grid t_k = k / steps, in (alpha, sigma)
        notation with the guided v-prediction (Ho & Salimans 2022):

            1. v_hat = v(z_t, t, null) + w (v(z_t, t, c) - v(z_t, t, null))
            2. x_hat = alpha_t z_t - sigma_t v_hat            (predicted clean latent)
            3. e_hat = sigma_t z_t + alpha_t v_hat            (predicted noise)
            4. z_s   = alpha_s x_hat + sigma_s e_hat          (DDIM eq. 12 with sigma_eta = 0)

        At t = 1, alpha_t = 0, so the first x_hat is -v_hat; the last step
        (s = 0) returns x_hat itself.
        """
        net = self.net
        z = noise.to(self.device)
        n = z.shape[0]
        grid = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
        null = torch.zeros_like(cond)
        # Both guidance branches draw on the caption's beat grid, so guidance never mixes two tempi.
        bpm = net.predict_bpm(cond) if net.beat_harmonics else None
        bpm2 = None if bpm is None else torch.cat([bpm, bpm])
        for k in range(steps):
            t, s = grid[k].item(), grid[k + 1].item()
            t_batch = torch.full((n,), t, device=self.device)
            if guidance == 1.0:
                v_hat = net(z, t_batch, cond, bpm)
            else:
                v_both = net(torch.cat([z, z]), torch.cat([t_batch, t_batch]), torch.cat([cond, null]), bpm2)
                v_cond, v_null = v_both.chunk(2)
                v_hat = v_null + guidance * (v_cond - v_null)
            a_t, s_t = self.alpha_sigma(torch.tensor([t]))
            a_s, s_s = self.alpha_sigma(torch.tensor([s]))
            a_t, s_t, a_s, s_s = (float(v) for v in (a_t, s_t, a_s, s_s))
            x_hat = a_t * z - s_t * v_hat
            e_hat = s_t * z + a_t * v_hat
            z = a_s * x_hat + s_s * e_hat
        return z

    # ------------------------------------------------------------ files
    def save(self, folder: str | os.PathLike[str], info: dict[str, Any] | None = None) -> None:
        """Write ``model.safetensors`` (policy weights) and ``config.json`` to ``folder``, each atomically.

        config.json holds ``{"class", "version", "code_version", "config", "training"}``
        as sorted JSON; ``training`` is ``info`` (default: the loaded record).
        The weights are written first: the config never names weights that
        are not there yet.
        """
        if self.lora_rank:
            from ..lora import merged_state_dict

            state = merged_state_dict(self.net)
        else:
            state = self.net.state_dict()
        save_checkpoint(folder, state, self.config, self.training if info is None else info)

    @classmethod
    def load(cls, folder: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu") -> TinyDiffusion:
        """The model saved in ``folder`` (default: the checkpoint shipped in the package).

        Raises :class:`~finetune.adapter.CheckpointError` (one line, with how to
        make a checkpoint) when the folder lacks the files or the weights do
        not fit the config.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder if folder is not None else ASSET_DIR).expanduser()
        record = read_config(folder)
        if record.get("class") != cls.__name__:
            raise CheckpointError(f"{folder}: config.json is for {record.get('class')!r}, not {cls.__name__}")
        if int(record.get("code_version", 0)) > cls.code_version:
            raise CheckpointError(f"{folder}: saved by a newer {cls.__name__} (code_version "
                                  f"{record['code_version']} > {cls.code_version}); upgrade rewardkit")
        try:
            model = cls(**record["config"], device=device)
            state = load_file(str(folder / "model.safetensors"), device="cpu")
        except (TypeError, KeyError, SafetensorError, OSError) as exc:
            raise CheckpointError(f"{folder}: unusable checkpoint ({exc})") from None
        try:
            model.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(f"{folder}: weights do not fit config.json ({first[-1].strip()[:200]})") from None
        model.training = dict(record.get("training") or {})
        return model


def missing_checkpoint_message(folder: Path) -> str:
    return (f"no tiny_diffusion checkpoint in {folder} (model.safetensors + config.json); make one with "
            "`rewardkit synth make CORPUS --n 500 --seed 0` and `finetune pretrain --data CORPUS -o CKPT`, "
            "then pass --checkpoint CKPT")


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder, after checking both files are there."""
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise CheckpointError(missing_checkpoint_message(folder))
    try:
        record = json.loads((folder / "config.json").read_text())
        if not isinstance(record.get("config"), dict):
            raise ValueError("no 'config' object")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: unreadable ({exc})") from None
    return record


def save_checkpoint(folder: str | os.PathLike[str], state: dict[str, torch.Tensor], config: dict[str, Any],
                    info: dict[str, Any]) -> None:
    """Write a state dict and its config as a TinyDiffusion checkpoint (used by ``save`` and by ``pretrain``'s EMA)."""
    from safetensors.torch import save

    from rewardkit._fileio import atomic_write

    folder = Path(folder)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    with atomic_write(folder / "model.safetensors") as f:
        # One metadata key only: safetensors stores metadata as a hash map, so several keys would come out in a
        # random order and the same weights would give different file bytes (and hashes).
        f.write(save(tensors, metadata={"format": "pt"}))
    record = {"class": TinyDiffusion.__name__, "version": __version__, "code_version": TinyDiffusion.code_version,
              "config": config, "training": info}
    with atomic_write(folder / "config.json") as f:
        f.write((json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
