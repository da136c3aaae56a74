"""Training: one run folder per (data, model, optimizer, seed)."""

from landscape.train.all import check_hyper, parse_optimizers, train_all
from landscape.train.config import TrainConfig
from landscape.train.evaluate import predict, split_metrics
from landscape.train.loop import TrainResult, epoch_files, train

__all__ = ["check_hyper", "parse_optimizers", "TrainConfig", "TrainResult", "epoch_files", "predict", "split_metrics",
           "train", "train_all"]
