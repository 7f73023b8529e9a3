"""Metrics equal to the official evaluations', as torchmetrics states reduced across DDP ranks.

`lamp.py`: LaMP's accuracy / F1, MAE / RMSE and ROUGE-1 / ROUGE-L; `multilabel.py`: the annotator
tasks' label sets; `longform.py`: LongLaMP's and LaMP-QA's ROUGE, BLEU and METEOR.
"""
