"""asrprune: sensitivity-aware one-shot pruning of Whisper, measured in word error rate."""

__version__ = "0.1.0"
