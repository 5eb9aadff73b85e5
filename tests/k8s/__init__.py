"""Tests against a real Kubernetes control plane (scripts/k8s-sim)."""
