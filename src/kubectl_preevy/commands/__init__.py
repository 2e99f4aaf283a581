"""One module per command, each exposing `run(args) -> int`; what they share is in `shared`."""
