"""finetune: the DRAGON loop over diffusion models, with rewardkit rewards as plug-ins.

* :mod:`finetune.loop`: ``run`` (the loop, checkpoints, exact resume) and its :class:`~finetune.loop.RunConfig`;
* :mod:`finetune.losses`: Diffusion-DPO and Diffusion-KTO; :mod:`finetune.splitters`: rewards to demonstrations;
* :mod:`finetune.prompts`: prompt sources and held-out prompts; :mod:`finetune.evaluate`: win rates over the base;
* :mod:`finetune.adapter`: the protocol a model implements; :mod:`finetune.models`: the built-in tiny
  text-to-music model (:mod:`finetune.pretrain`, :mod:`finetune.sample`); :mod:`finetune.lora`: LoRA layers.

finetune may import rewardkit; rewardkit never imports finetune.
"""
