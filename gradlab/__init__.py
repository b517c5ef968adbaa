"""gradlab: experiment tracking for learning, and checking, how gradient descent works."""

__version__ = "0.1.0"
