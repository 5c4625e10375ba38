"""Low-rank adapters (LoRA, Hu et al. 2021) for the Linear and Conv1d layers of a torch network.

``inject(net, rank, alpha)`` replaces every ``nn.Linear`` and ``nn.Conv1d``
(``groups=1``) in ``net`` by a :class:`LoRALayer` that computes

    y = base(x) + (alpha / rank) * B(A(x))

with ``A`` a rank-``r`` copy of the layer's geometry (for a convolution: the
same kernel size, stride, padding and dilation, ``r`` output channels) and ``B``
a 1x1 map back to the output width. ``B`` starts at zero, so the wrapped
network computes exactly what it did. The base weights are frozen; only A and
B train. Inside ``disabled(net)`` the adapters are switched off, which makes
the same module the frozen reference of DPO/KTO without a second copy of the
network.

:func:`merged_state_dict` folds the adapters into the base weights under the
original parameter names, so a LoRA fine-tune saves as an ordinary checkpoint.
This is written here rather than taken from ``peft`` because the built-in
model's linear layers must stay batch-invariant (one row at a time, see
``RowLinear``), which a generic LoRA layer would not keep.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from rewardkit.errors import InputError

__all__ = ["LoRALayer", "disabled", "inject", "lora_parameters", "merged_state_dict"]


class LoRALayer(nn.Module):
    """A frozen ``nn.Linear`` or ``nn.Conv1d`` plus a trainable low-rank update."""

    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale, self.enabled = rank, alpha / rank, True
        if isinstance(base, nn.Conv1d):
            self.lora_a = nn.Parameter(torch.empty(rank, base.in_channels, base.kernel_size[0]))
            self.lora_b = nn.Parameter(torch.zeros(base.out_channels, rank, 1))
        else:
            self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def delta_weight(self) -> torch.Tensor:
        """The update folded into the base weight's shape."""
        if isinstance(self.base, nn.Conv1d):
            return self.scale * torch.einsum("or,rik->oik", self.lora_b[:, :, 0], self.lora_a)
        return self.scale * self.lora_b @ self.lora_a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if not self.enabled:
            return y
        if isinstance(self.base, nn.Conv1d):
            b = self.base
            h = F.conv1d(x, self.lora_a, None, b.stride, b.padding, b.dilation)
            return y + self.scale * F.conv1d(h, self.lora_b)
        # Row by row, like RowLinear: a row's result must not depend on the batch around it.
        return y + self.scale * torch.cat([F.linear(F.linear(row, self.lora_a), self.lora_b) for row in x.split(1)])


def inject(net: nn.Module, rank: int, alpha: float | None = None) -> list[nn.Parameter]:
    """Wrap every Linear and (groups=1) Conv1d of ``net`` in place; returns the new trainable parameters."""
    if rank < 1:
        raise InputError(f"lora-rank: must be at least 1, got {rank}")
    if any(isinstance(m, LoRALayer) for m in net.modules()):
        raise InputError("lora: the network already has adapters")
    alpha = float(rank if alpha in (None, 0) else alpha)
    for p in net.parameters():
        p.requires_grad_(False)
    targets = [(name, m) for name, m in net.named_modules()
               if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv1d) and m.groups == 1)]
    for name, module in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, LoRALayer(module, rank, alpha).to(next(module.parameters()).device))
    return lora_parameters(net)


def lora_parameters(net: nn.Module) -> list[nn.Parameter]:
    return [p for m in net.modules() if isinstance(m, LoRALayer) for p in (m.lora_a, m.lora_b)]


@contextlib.contextmanager
def disabled(net: nn.Module) -> Iterator[None]:
    """Context in which ``net`` computes as if it had no adapters (the frozen reference)."""
    layers = [m for m in net.modules() if isinstance(m, LoRALayer)]
    for m in layers:
        m.enabled = False
    try:
        yield
    finally:
        for m in layers:
            m.enabled = True


def merged_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict ``net`` would have without adapters, with each update folded into its base weight."""
    state = {}
    wrappers = {name: m for name, m in net.named_modules() if isinstance(m, LoRALayer)}
    for key, value in net.state_dict().items():
        owner = next((n for n in wrappers if key.startswith(n + ".")), None)
        if owner is None:
            state[key] = value
            continue
        rest = key[len(owner) + 1:]
        if rest.startswith("lora_"):
            continue
        plain = f"{owner}.{rest.removeprefix('base.')}"
        if rest == "base.weight":
            value = value + wrappers[owner].delta_weight().detach().to(value.dtype)
        state[plain] = value
    return state
