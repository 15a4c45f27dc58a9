"""Training: options, the loop, AdamW + schedule, checkpoints, DDP set-up, metrics, evaluation.

    from dnahnet_core.train import TrainOptions, train, resolve_options
    result = train(resolve_options({"data": "prep", "config": "dnahnet-tiny", "out": "run"},
                                   resume=False))
"""

from dnahnet_core.train.loop import TrainResult, train
from dnahnet_core.train.options import TrainOptions, resolve_options

__all__ = ["TrainOptions", "TrainResult", "resolve_options", "train"]
