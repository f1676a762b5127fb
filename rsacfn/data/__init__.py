"""Corpora as tables: labels, transcripts, audio, the KEMDy readers and manifests, splits, batching and the demo corpus."""
