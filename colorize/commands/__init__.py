"""One subcommand per module; each defines ``register(subparsers)`` setting ``func`` on its parser."""
