"""The command floor: every `lamp-pl` command, and the only code that reads argv or config files.

`lamp_pl.cli.tree` holds the command registry (`COMMANDS`), `lamp-pl --help` and the one
jsonargparse parser path; each other module of this package holds the typed functions of one
group of commands. The library below (`lamp_pl.data`, `lamp_pl.retrieval`, `lamp_pl.learned`,
`lamp_pl.adapters`, ...) never imports this package.
"""

from lamp_pl.cli.tree import COMMANDS, TRAINING, Command, build_parser, load, main, run_function, usage

__all__ = ["COMMANDS", "TRAINING", "Command", "build_parser", "load", "main", "run_function", "usage"]
