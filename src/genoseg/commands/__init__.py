"""One module per ``genoseg`` subcommand; each defines ``register(subparsers)``."""
