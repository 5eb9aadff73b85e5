"""The closed-loop demo: train, serve, stream traffic, drift, retrain, promote, scale."""
