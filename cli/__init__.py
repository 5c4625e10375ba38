"""Command-line entry points ``rewardkit`` and ``finetune`` (installed as ``rewardkit_cli``).

The commands parse options, call the library and print; they hold no logic
the Python API lacks.
"""
