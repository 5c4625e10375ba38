"""finetune: the DRAGON loop over diffusion models, with rewardkit rewards as plug-ins.

Built so far: the adapter protocol (:mod:`finetune.adapter`) that the loop
drives, and the built-in text-to-music diffusion model
(:mod:`finetune.models.tiny_diffusion`) with its pretraining
(:mod:`finetune.pretrain`) and sampling (:mod:`finetune.sample`). The DRAGON
loop itself is the next step. finetune may import rewardkit; rewardkit never
imports finetune.
"""
