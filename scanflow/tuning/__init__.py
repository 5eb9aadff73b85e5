"""Hyperparameter tuning: each trial of a study is a workflow run, driven by Optuna.

:class:`~scanflow.tuning.study.Tuner` runs a study declared under ``tuning:`` in the spec.
"""
