"""Checkpoints: load a run's model and exact data split; cache analysis results."""

from landscape.checkpoint.cache import find_record, latest, record_path, records, store
from landscape.checkpoint.load import Checkpoint, load_checkpoint, read_payload, resolve_checkpoint_path

__all__ = ["Checkpoint", "find_record", "latest", "load_checkpoint", "read_payload", "record_path", "records",
           "resolve_checkpoint_path", "store"]
