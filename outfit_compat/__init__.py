"""outfit-compat: the command-line entry point tying catalog, training, index and service together."""

__version__ = "0.1.0"
