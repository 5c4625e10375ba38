"""Diffusion-DPO and Diffusion-KTO on per-sample denoising losses.

Both compare the policy's and the frozen reference's per-sample denoising
MSE (the adapter's ``per_sample_loss``) of generated clips re-noised at a
timestep t with noise eps; within a DPO pair, winner and loser share t and
eps. A lower MSE than the reference's means the policy has moved towards
that clip.

Beta convention
---------------
Here beta multiplies the difference of MSEs directly:

    DPO: logits = (ref_w - ref_l) - (pol_w - pol_l),  loss = -log sigmoid(beta * logits)

The Diffusion-DPO paper writes the same objective with a factor 1/2 folded
into the MSE ("beta = 5000" in its code, applied to ``-0.5 * beta * ...``),
so its beta 5000 is our beta 2500. The KTO loss uses the same beta:

    g = ref_mse - pol_mse,  z = max(mean(g), 0) (detached),
    loss = lambda_y * (1 - sigmoid(sign_y * beta * (g - z))),  sign = +1 desirable, -1 undesirable.

Since the MSEs are means over all latent dimensions, the scale of beta
depends on the model's latent size only through that mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LossOutput", "dpo_loss", "kto_loss"]


@dataclass
class LossOutput:
    loss: torch.Tensor              # scalar, with gradients
    accuracy: float                 # implicit reward accuracy: share of pairs (labels) the policy already ranks right
    policy_mse: float
    reference_mse: float
    kl_proxy: float                 # mean |pol_mse - ref_mse|: how far the policy's denoising moved on these clips


def dpo_loss(pol_w: torch.Tensor, pol_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor,
             beta: float) -> LossOutput:
    """Diffusion-DPO loss of winner/loser MSEs [each shape=(m,)] (see the module docstring)."""
    logits = (ref_w - ref_l) - (pol_w - pol_l)
    loss = -F.logsigmoid(beta * logits).mean()
    pol, ref = torch.cat([pol_w, pol_l]).detach(), torch.cat([ref_w, ref_l]).detach()
    return LossOutput(loss, float((logits.detach() > 0).float().mean()), float(pol.mean()), float(ref.mean()),
                      float((pol - ref).abs().mean()))


def kto_loss(pol: torch.Tensor, ref: torch.Tensor, desirable: torch.Tensor, beta: float,
             lambda_desirable: float = 1.0, lambda_undesirable: float = 1.0) -> LossOutput:
    """Diffusion-KTO loss of per-sample MSEs [shape=(n,)] with boolean labels ``desirable`` [shape=(n,)]."""
    g = ref - pol
    z = g.detach().mean().clamp(min=0.0)
    sign = desirable.to(g.dtype) * 2.0 - 1.0
    weight = torch.where(desirable, torch.as_tensor(lambda_desirable, dtype=g.dtype),
                         torch.as_tensor(lambda_undesirable, dtype=g.dtype))
    loss = (weight * (1.0 - torch.sigmoid(sign * beta * (g - z)))).mean()
    return LossOutput(loss, float((sign * g.detach() > 0).float().mean()), float(pol.detach().mean()),
                      float(ref.detach().mean()), float((pol.detach() - ref).abs().mean()))
