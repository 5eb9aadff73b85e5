"""Kubernetes access shared by the deployer, the Kubernetes engines and the agents' toolkit:
one way to connect (:mod:`.cluster`), to name and label objects (:mod:`.names`) and to apply
them (:mod:`.apply`). Importing this package does not import the ``kubernetes`` client."""
