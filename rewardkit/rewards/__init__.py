"""Rewards: rewardkit's metrics as higher-is-better scores of generated audio, for fine-tuning loops.

>>> from rewardkit.rewards import make_reward, Batch
>>> reward = make_reward("rewardkit:fad?ref=exemplars/")         # doctest: +SKIP
>>> scored = reward.score(Batch(audio, 16000, prompts))            # doctest: +SKIP
>>> scored.values, scored.set_value()                              # doctest: +SKIP

See :mod:`rewardkit.rewards.base` for the interface (three reward classes,
per-clip values and set values) and :mod:`rewardkit.rewards.spec` for spec
strings. This package knows nothing of any training loop: ``finetune``
imports it, never the other way round.
"""

from .base import DISTRIBUTION, INSTANCE, INSTANCE_TO_DISTRIBUTION, KINDS, Batch, EmbeddingMemo, Reward, Scored
from .spec import BUILTIN, FunctionReward, WeightedSum, make_reward, make_rewards, split_specs

__all__ = ["BUILTIN", "DISTRIBUTION", "INSTANCE", "INSTANCE_TO_DISTRIBUTION", "KINDS", "Batch", "EmbeddingMemo",
           "FunctionReward", "Reward", "Scored", "WeightedSum", "make_reward", "make_rewards", "split_specs"]
