"""The command line: `ipt-workflow` and its subcommands."""
