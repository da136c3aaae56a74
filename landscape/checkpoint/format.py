"""The checkpoint file format: its marker and version (the keys are in docs/records.md).

The trainer writes this format (:mod:`landscape.train.payload`) and
:mod:`landscape.checkpoint.load` reads it; this module imports nothing, so the
writer can name the format without loading the reader.
"""

#: Version of the checkpoint dictionary; a reader accepts 1 to its own version.
FORMAT_VERSION = 1
#: The ``kind`` entry that marks a landscape checkpoint.
KIND = "landscape-checkpoint"
