# SPDX-License-Identifier: BSD-3-Clause
"""Training of the registry models with BNext's recipe: ``python -m bnn_brevitas.train``.

Modules, in the order a run uses them:

=============  ===============================================================================
``config``     ``TrainConfig`` (every option, documented), YAML loading, validation
``cli``        the command line generated from ``TrainConfig``; ``main()``
``data``       Fashion-MNIST / MNIST-style IDX / CIFAR-10 pickles / ImageFolder / synthetic
``loaders``    resumable, DDP-aware samplers and DataLoaders
``augment``    kornia batch augmentation (crop, flip, RandAugment)
``recipe``     AdamW parameter groups, warm-up + cosine schedule, progressive binarization,
               gradient clipping
``distill``    knowledge-distillation loss and teacher loading
``dist``       single process or DDP under torchrun (gloo on CPU, nccl on CUDA)
``state``      RNG / quantizer-statistics state for exact resume; SIGINT/SIGTERM handling
``loop``       training step (stops on a non-finite loss or gradient), epoch loop, evaluation
``resume``     ``--resume``: exact or refused; ``--extend-epochs`` (a warm restart)
``selection``  best epoch on the validation split (``best.pt``); the one test evaluation
``runner``     ``train(cfg)``: build, resume, run epochs, checkpoint
``finish``     curves, checked QONNX export, model card
``report``     metrics.jsonl, curves.png, summary table, model_card.{json,md}
=============  ===============================================================================

>>> from bnn_brevitas.train import TrainConfig
>>> TrainConfig().model, TrainConfig().dataset
('bnext_nano_hw', 'fashion_mnist')
"""

from __future__ import annotations

from .cli import main
from .config import TrainConfig, validate
from .runner import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "validate", "main", "train"]
