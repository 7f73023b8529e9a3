"""The study grid's library: axes and points, the plan (deduplication, caches built first),
launchers (local workers, a Slurm job array through submitit), per-point state for resume,
statistics over seeds, tables, plots, the dry run and the papers' recipes.

`lamp_pl.cli.grid` is the command line; nothing here parses argv.
"""
