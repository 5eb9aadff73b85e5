"""Applications the Kubernetes tests deploy: one with every part (services with a backup,
agents of each built-in strategy, a managed tracker, serving nodes)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SHOP = """
name: {name}
team: data-science
services:
- name: digits
  model: models:/digits@champion
  backup_model: models:/digits@backup
  port: 8180
  workers: 2
  min_workers: 1
  max_workers: 4
  resources: {{cpu: 100m, memory: 64Mi}}
agents:
- name: scaler
  role: executor
  strategy: latency-autoscale
  config: {{service: digits}}
- name: guard
  role: executor
  strategy: failover
  config: {{service: digits, model: digits}}
- name: retrainer
  role: planner
  strategy: drift-retrain
  config: {{service: digits, model: digits, workflow: train, holdout_path: h.npz}}
workflows:
- name: train
  executors:
  - {{name: train, script: train.py}}
tracker: {{managed: true}}
kubernetes: {{serving_node_label: "{serving}"}}
"""


def write_shop(folder: Path, name: str = "shop", serving: str = "role=serving") -> Path:
    """An application folder holding :data:`SHOP`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scanflow.yaml").write_text(SHOP.format(name=name, serving=serving))
    (folder / "train.py").write_text("print('train')\n")
    return folder


def copy_digits(folder: Path, name: str = "digits") -> Path:
    """examples/digits with one service (its model, with a backup) and a scaling agent."""
    shutil.copytree(REPO / "examples" / "digits", folder)
    spec = folder / "scanflow.yaml"
    text = spec.read_text().replace("name: digits\n", f"name: {name}\n", 1)
    spec.write_text(
        text + "services:\n- name: predictor\n  model: models:/digits@champion\n"
        "  backup_model: models:/digits@backup\n  workers: 2\n  min_workers: 1\n"
        "  max_workers: 4\n"
        "agents:\n- name: scaler\n  role: executor\n  strategy: latency-autoscale\n"
        "  config: {service: predictor}\n"
    )
    return folder
