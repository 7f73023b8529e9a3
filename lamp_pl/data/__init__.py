"""LaMP data: reading and validating the benchmark's files, and synthetic LaMP-format data."""

from lamp_pl.data.lamp import LaMPDataError, LaMPQuestion, load_split, split_files

__all__ = ["LaMPDataError", "LaMPQuestion", "load_split", "split_files"]
