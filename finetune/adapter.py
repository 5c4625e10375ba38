"""The adapter protocol: what the DRAGON loop needs from a text-to-music diffusion model.

The loop (``for round in rounds: generate, score, split, DPO/KTO step``) never
touches a model directly; it talks to a :class:`DiffusionAdapter`. An adapter
wraps one model and offers

* ``encode_prompts``: captions -> conditioning tensor (computed once per batch,
  reused by generation and by the loss);
* ``generate``: prompts + one seed per sample -> clean latents; each sample's
  initial noise (and any sampler noise) comes from its own ``torch.Generator``
  seeded by its seed, so a sample is the same whatever batch it was drawn in;
* ``decode``: latents -> audio at ``sample_rate``;
* ``sample_timesteps`` and ``per_sample_loss``: the per-sample denoising loss
  of given clean latents under given noise and timesteps, for the policy or
  (``reference=True``) for the frozen reference. Diffusion-DPO and -KTO need
  only these: the final clean latents of each generation are re-noised, no
  sampling trajectory is stored;
* ``trainable_parameters``, ``save`` / ``load``.

Reference model
---------------
DPO and KTO compare the policy with a frozen reference. For a full fine-tune
the adapter keeps a deep copy of the network made by ``freeze_reference()``
(``requires_grad=False``, never in the optimiser) before the first update.
A LoRA adapter will not copy anything: the policy is the base model with
low-rank adapters injected by ``peft``, and the reference is the same module
with the adapters switched off, i.e. ``per_sample_loss(..., reference=True)``
runs under ``with peft_model.disable_adapter(): ...`` and ``torch.no_grad()``;
``freeze_reference()`` then only checks that adapters exist, and
``trainable_parameters()`` returns the LoRA matrices alone.

Files
-----
``save(dir)`` writes ``model.safetensors`` (weights; never a pickle) and
``config.json`` (sorted JSON: class name, version, the constructor arguments,
and a free-form training record); ``load(dir)`` reads them back and never
calls ``torch.load``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from rewardkit.errors import InputError, RewardkitError

if TYPE_CHECKING:
    import torch

__all__ = ["CheckpointError", "DiffusionAdapter", "FinetuneError", "check_seeds"]


class FinetuneError(RewardkitError):
    """Root of the errors finetune raises on purpose (a RewardkitError, so the CLIs print one line)."""


class CheckpointError(FinetuneError):
    """A checkpoint folder is missing, incomplete, or does not fit the model it is loaded into."""


@runtime_checkable
class DiffusionAdapter(Protocol):
    """One text-to-music diffusion model as the DRAGON loop sees it.

    Attributes
    ----------
    sample_rate : int
        Rate of the audio that :meth:`decode` returns.
    device : torch.device
        Where the model runs; inputs are moved there, outputs of ``generate``
        and ``per_sample_loss`` live there.
    """

    sample_rate: int
    device: torch.device

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Conditioning for each prompt.

        Parameters
        ----------
        prompts : list of str [length n]

        Returns
        -------
        torch.Tensor [shape=(n, ...)]
            Model-specific conditioning (for the tiny model: MiniLM sentence
            embeddings, shape (n, 384)). A row of zeros means "no prompt"
            (the unconditional branch of classifier-free guidance) for
            adapters that support it.
        """
        ...

    def generate(self, prompts: list[str], seeds: list[int], steps: int, guidance: float) -> torch.Tensor:
        """Sample clean latents, one per (prompt, seed) pair.

        Parameters
        ----------
        prompts : list of str [length n]
        seeds : list of int [length n]
            Sample ``i`` draws its initial noise (and any sampler noise) from
            ``torch.Generator().manual_seed(seeds[i])`` only, so its result does
            not depend on the batch it is in, nor on the global RNG.
        steps : int
            Sampler steps.
        guidance : float
            Classifier-free guidance scale ``w``: 1 is the conditional model
            alone, 0 the unconditional one, > 1 extrapolates away from it.

        Returns
        -------
        torch.Tensor [shape=(n, *latent_shape)]
            Clean latents, no gradient, on ``device``.
        """
        ...

    def decode(self, latents: torch.Tensor) -> list[np.ndarray]:
        """Audio of each latent: a list of n mono float32 arrays at ``sample_rate``."""
        ...

    def sample_timesteps(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n training timesteps [shape=(n,)], in the units ``per_sample_loss`` expects, from ``generator``."""
        ...

    def per_sample_loss(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                        cond: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """Denoising loss of each sample [shape=(n,)].

        The squared error of the model's training target (epsilon, v, ... as
        the adapter documents) averaged over all latent dimensions, for clean
        ``latents`` noised with ``noise`` at ``timesteps`` under ``cond``.
        ``reference=True`` evaluates the frozen reference under
        ``torch.no_grad()``; otherwise the result carries gradients to
        :meth:`trainable_parameters`. Equal weights, equal inputs -> equal
        losses, bit for bit (no dropout or other hidden randomness).
        """
        ...

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters an optimiser should update (all weights, or only the LoRA matrices)."""
        ...

    def freeze_reference(self) -> None:
        """Snapshot the current weights as the frozen reference used by ``per_sample_loss(reference=True)``."""
        ...

    def save(self, folder: str | os.PathLike[str], info: dict[str, Any] | None = None) -> None:
        """Write ``model.safetensors`` + ``config.json`` (with ``info`` as its training record) atomically."""
        ...

    @classmethod
    def load(cls, folder: str | os.PathLike[str], device: str = "cpu") -> DiffusionAdapter:
        """The adapter saved in ``folder``; raises :class:`CheckpointError` if it is missing or does not fit."""
        ...


def check_seeds(prompts: list[str], seeds: list[int]) -> tuple[list[str], list[int]]:
    """Validate the (prompt, seed) pairs of a ``generate`` call; returns them as lists."""
    if isinstance(prompts, str):
        raise InputError("prompts: expected a list of strings, got one string")
    prompts, seeds = list(prompts), [int(s) for s in seeds]
    if not all(isinstance(p, str) for p in prompts):
        raise InputError("prompts: expected a list of strings")
    if len(prompts) != len(seeds):
        raise InputError(f"seeds: need one per prompt, got {len(seeds)} seeds for {len(prompts)} prompts")
    bad = [s for s in seeds if not 0 <= s < 2**63]
    if bad:
        raise InputError(f"seeds: must be in [0, 2**63), got {bad[0]}")
    return prompts, seeds
