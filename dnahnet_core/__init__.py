"""dnaHNet: a tokenizer-free hierarchical DNA language model for prokaryotic genomes."""

__version__ = "0.1.0"
