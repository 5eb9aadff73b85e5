"""The control server: a REST API (``/api``) and a dashboard over the applications of a
workspace, built on :mod:`scanflow.api`. Start it with ``scanflow server``."""
