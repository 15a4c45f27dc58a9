"""`python -m dnahnet_cli ...` (used by torchrun for distributed training)."""

from dnahnet_cli import main

main()
