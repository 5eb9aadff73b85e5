"""Two teams' applications for the server tests: their YAML and step code."""

from __future__ import annotations

STEPS = """
import sys, time
from pathlib import Path

def prepare(note, dataset, loud):
    print("note:", note)
    for i in range(int(loud) // 100):  # `loud` bytes more of log: lines of 100 bytes
        print(f"{i:09d} <b>é</b> " + "x" * 79)
    Path(dataset).write_text(note)

def train(dataset, model, gate, fail, lr):
    # waits for the test to open the gate, fails while the fail marker exists
    while gate and not Path(gate).exists():
        time.sleep(0.02)
    if fail and Path(fail).exists():
        print("failing: the marker", fail, "exists", file=sys.stderr)
        sys.exit(3)
    from scanflow import tracking

    for epoch in range(4):  # a loss curve and a last accuracy that depend on lr
        tracking.log_metric("loss", round(1 / (1 + float(lr) * (epoch + 1)), 4), step=epoch)
    tracking.log_metric("accuracy", round(0.5 + float(lr) / 2, 4))
    Path(model).write_text("model of " + Path(dataset).read_text())

def report(model, result):
    print("<script>alert('log')</script>")
    Path(result).write_text(Path(model).read_text())
"""


def pipeline(name: str, team: str) -> str:
    return f"""
name: {name}
team: {team}
workflows:
- name: pipe
  parameters: {{note: hello, gate: "", fail: "", lr: 0.1, loud: 0}}
  executors:
  - name: prepare
    function: steps:prepare
    outputs: [dataset]
  - name: train
    function: steps:train
    inputs: {{dataset: prepare.dataset}}
    outputs: [model]
  - name: report
    function: steps:report
    inputs: {{model: train.model}}
    outputs: [result]
agents:
- name: watcher
  role: monitor
  config: {{model: digits, alias: champion, service: digits}}
"""
