"""One module per ``seqbench`` subcommand: ``add_parser(subparsers)`` and ``run(args) -> int``."""
