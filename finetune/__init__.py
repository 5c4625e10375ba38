"""finetune: the DRAGON loop over diffusion models, with rewardkit rewards as plug-ins.

Nothing is implemented here yet: the adapter protocol, the built-in model and
the loop come in later work. finetune may import rewardkit; rewardkit never
imports finetune.
"""
