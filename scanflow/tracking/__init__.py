"""MLflow glue: tracking URIs, runs of workflows and steps, and the step logging API."""
