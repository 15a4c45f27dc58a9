"""The dnahnet command line: one thin module per subcommand."""
