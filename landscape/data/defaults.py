"""Default settings of the data layer that ``--help`` shows: importable without numpy, scipy or torch."""

#: Default fine-structure threshold of near-duplicate detection (see :mod:`landscape.data.duplicates`).
THRESHOLD = 0.55
#: Default layout (shift-tolerant 16x16 thumbnail correlation) threshold.
COARSE_THRESHOLD = 0.9
