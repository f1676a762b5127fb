"""One training run: presets, the model card, run identity, precision, tracking, the feature cache, checkpoints, and the loop."""
