"""The ``scanflow`` command line."""
