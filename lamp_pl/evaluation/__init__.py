"""Scoring what a run wrote: a predictions file against its golds, and the LLM judge.

`score.py` reads a predictions file and returns its task's official metrics (`lamp-pl
evaluate`); `predictions.py` writes and reads LaMP's output format; `judge.py` and
`judge_run.py` score LaMP-QA answers with an LLM judge.
"""
