"""The Kubernetes engine: a workflow run as an Argo Workflow (:mod:`.argo`) or as a DAG of
Jobs that Scanflow drives (:mod:`.jobs`, :mod:`.driver`); both start the same step pods
(:mod:`.steps`), whose container runs :mod:`.step_main`. Importing this package imports
neither ``kubernetes`` nor ``hera``."""
