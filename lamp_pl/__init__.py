"""lamp_pl: retrieval-augmented personalization of language models on LaMP, with Lightning."""

__version__ = "0.2.0"
