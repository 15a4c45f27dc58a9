"""Zero-shot tasks and the shared likelihood engine: variants, essentiality, segments."""
