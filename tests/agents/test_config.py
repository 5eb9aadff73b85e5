"""Agents declared in scanflow.yaml: strategies, references and triggers resolved, every
malformed piece reported with its file and line; the CLI checks and lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanflow.agents.config import load_agents
from scanflow.agents.triggers import Every, OnMessage
from scanflow.errors import SpecError
from scanflow.spec import load_project

RULES = """
from scanflow.agents import rule, sensor, actuator, decide


@sensor(trigger={"every": "2s"}, timeout=3)
def level(ctx):
    return {"level": 1}


@rule
def high(facts):
    return None


@actuator(timeout=60)
def act(ctx):
    return None


def plain(facts):
    return None
"""


def _project(tmp_path: Path, spec: str):
    root = tmp_path / "app"
    root.mkdir(exist_ok=True)
    (root / "scanflow.yaml").write_text(spec.lstrip())
    (root / "my_rules.py").write_text(RULES)
    return load_project(root)


def test_custom_agent_resolves_its_declarations(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
name: app
agents:
- name: watcher
  sensors: [my_rules:level]
  rules: [my_rules:high, my_rules:plain]
  actuators: [my_rules:act]
  triggers: [{every: 3s}, {on: message, intent: drift}]
  config: {cooldown: 60, max_actions_per_day: 3, threshold: 0.5}
""",
    )
    (setup,) = load_agents(project)
    assert sorted(setup.registry.rules) == ["high", "plain"]
    assert setup.registry.sensors["level"].trigger == Every(every=2)
    assert setup.registry.sensors["level"].timeout == 3
    assert setup.registry.actuators["act"].timeout == 60
    assert setup.triggers == [Every(every=3), OnMessage(intent="drift")]
    assert setup.guardrails.cooldown == 60 and setup.guardrails.max_actions_per_day == 3
    assert setup.config["threshold"] == 0.5


def test_builtin_strategy_with_its_config(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
name: app
services:
- {name: digits, model: "models:/digits@champion", port: 8180}
agents:
- name: scaler
  strategy: latency-autoscale
  config: {service: digits, interval: 1, p95_high_ms: 100, p95_low_ms: 20}
""",
    )
    (setup,) = load_agents(project)
    assert setup.strategy == "latency-autoscale"
    assert setup.config["p95_high_ms"] == 100
    assert setup.triggers == [Every(every=1)]


BAD = """
name: app
agents:
- name: scaler
  strategy: latency-autoscale
  config:
    service: digits
    p95_high_ms: fast
    colour: red
- name: retrainer
  strategy: drift-retrian
- name: custom
  sensors: [my_rules:nope]
  rules: [my_rules:level]
  actuators: [no_such_module:act]
  triggers:
  - {every: soon}
  - {on: sunrise}
  config: {cooldown: -5}
- name: idle
"""


def test_malformed_agent_config_is_reported_with_lines(tmp_path: Path) -> None:
    project = _project(tmp_path, BAD)
    with pytest.raises(SpecError) as caught:
        load_agents(project)
    problems = caught.value.problems
    spec = str(project.spec_path)
    expected = [
        (7, "agents[0].config.p95_high_ms", "valid number"),
        (8, "agents[0].config.colour", "unknown option 'colour'"),
        (6, "agents[0].config.service", "no service 'digits' in the application"),
        (10, "agents[1].strategy", "unknown strategy 'drift-retrian'"),
        (9, "agents[1].config.service", "required option is missing"),
        (9, "agents[1].config.model", "required option is missing"),
        (18, "agents[2].config.cooldown", "greater than or equal to 0"),
        (12, "agents[2].sensors[0]", "has no 'nope'"),
        (13, "agents[2].rules[0]", "declared as a sensor, not a rule"),
        (14, "agents[2].actuators[0]", "cannot import module 'no_such_module'"),
        (16, "agents[2].triggers[0]", "is not a duration"),
        (17, "agents[2].triggers[1]", "unknown event 'sunrise'"),
        (19, "agents[3]", "has no strategy and no rules"),
    ]
    assert len(problems) == len(expected), problems
    for line, where, text in expected:
        matching = [p for p in problems if p.startswith(f"{spec}:{line}: {where}: ")]
        assert matching and text in matching[0], (line, where, problems)


UNDECLARED = """
name: app
workflows:
- name: train
  executors: [{name: fit, script: my_rules.py}]
services:
- {name: digits, model: "models:/digits@champion", port: 8180, backup_model: "models:/other/1"}
- {name: portless, model: "models:/digits@champion"}
agents:
- name: scaler
  strategy: latency-autoscale
  config: {service: digit}
- name: retrainer
  strategy: drift-retrain
  config: {service: portless, model: digits, workflow: trian}
- name: failover
  strategy: failover
  config: {service: digits, model: digits}
"""


def test_built_in_strategies_name_only_what_the_application_declares(tmp_path: Path) -> None:
    project = _project(tmp_path, UNDECLARED)
    with pytest.raises(SpecError) as caught:
        load_agents(project)
    problems = caught.value.problems
    spec = str(project.spec_path)
    expected = [
        (11, "agents[0].config.service", "no service 'digit'", "did you mean 'digits'"),
        (14, "agents[1].config.service", "service 'portless' has no 'port'", "add one"),
        (14, "agents[1].config.workflow", "no workflow 'trian'", "did you mean 'train'"),
        (
            6,
            "services[0].backup_model",
            "'models:/other/1' is not a version of 'digits'",
            "register it",
        ),
    ]
    assert len(problems) == len(expected), problems
    for line, where, text, fix in expected:
        matching = [p for p in problems if p.startswith(f"{spec}:{line}: {where}: ")]
        assert matching and text in matching[0] and fix in matching[0], (where, problems)


def test_unknown_agent_name(tmp_path: Path) -> None:
    project = _project(tmp_path, "name: app\nagents:\n- name: a\n  rules: [my_rules:high]\n")
    with pytest.raises(SpecError, match="no agent 'b' in application 'app' \\(known: a\\)"):
        load_agents(project, ["b"])


def test_cli_check_prints_the_error_and_exits_2(tmp_path: Path, capsys) -> None:
    from scanflow.cli.main import main

    project = _project(tmp_path, BAD)
    code = main(["--app", str(project.base_dir), "agents", "check"])
    err = capsys.readouterr().err
    assert code == 2
    assert "scanflow.yaml:10: agents[1].strategy: unknown strategy 'drift-retrian'" in err
    assert "did you mean 'drift-retrain'?" in err
    assert "Traceback" not in err


def test_agent_triggers_survive_the_yaml_round_trip() -> None:
    from scanflow.spec import Application

    app = Application.from_yaml(
        "name: x\nagents:\n- name: a\n  rules: ['m:f']\n"
        "  triggers: [{on: message, intent: go}, every 5s]\n"
    )
    assert app.agents[0].triggers == [{"on": "message", "intent": "go"}, "every 5s"]
    assert Application.from_yaml(app.to_yaml()) == app


def _problems(tmp_path: Path, spec: str) -> list[str]:
    project = _project(tmp_path, spec)
    with pytest.raises(SpecError) as caught:
        load_agents(project)
    return [p.removeprefix(f"{project.spec_path}:") for p in caught.value.problems]


SERVICES = """
name: app
services:
- {name: digits, model: "models:/digits@champion", port: 8180}
agents:
"""


def test_a_misspelt_option_gets_a_did_you_mean(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        SERVICES + "- name: scaler\n  strategy: latency-autoscale\n"
        "  config: {service: digits, p95_hihg_ms: 100, colour: red}\n",
    )
    assert len(problems) == 2, problems
    assert problems[0] == (
        "7: agents[0].config.p95_hihg_ms: unknown option 'p95_hihg_ms'; did you mean 'p95_high_ms'?"
    )
    assert problems[1].startswith("7: agents[0].config.colour: unknown option 'colour'; options: ")
    assert "min_workers" in problems[1]  # no close match: the options are listed


def test_a_misspelt_strategy_still_has_its_options_and_service_checked(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        SERVICES + "- name: r\n  strategy: drift-retrian\n"
        "  config: {service: digit, model: digits, windw_rows: 5}\n",
    )
    assert problems == [
        "6: agents[0].strategy: unknown strategy 'drift-retrian'; use one of drift-retrain, "
        "latency-autoscale, failover or 'module:Class' for your own; did you mean 'drift-retrain'?",
        "7: agents[0].config.windw_rows: unknown option 'windw_rows'; did you mean 'window_rows'?",
        "7: agents[0].config.service: no service 'digit' in the application (known: digits); "
        "did you mean 'digits'?",
    ]


def test_two_problems_of_one_agent_are_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        SERVICES + "- name: scaler\n  strategy: latency-autoscale\n"
        "  config: {service: digts, interval: -1}\n",
    )
    assert [p.split(": ")[1] for p in problems] == [
        "agents[0].config.interval",
        "agents[0].config.service",
    ]
    assert "greater than 0 (got -1)" in problems[0]
    assert "did you mean 'digits'?" in problems[1]


def test_a_wrong_type_names_the_value_given(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        SERVICES + "- name: scaler\n  strategy: latency-autoscale\n"
        "  config: {service: digits, max_workers: lots}\n",
    )
    assert problems == [
        "7: agents[0].config.max_workers: Input should be a valid integer, unable to parse "
        "string as an integer (got 'lots')"
    ]


def test_a_custom_agent_s_near_miss_of_an_option_is_reported(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "name: app\nagents:\n- name: w\n  rules: [my_rules:high]\n"
        "  config: {sensor_timout: 300, threshold: 0.5}\n",
    )
    assert problems == [
        "5: agents[0].config.sensor_timout: unknown option 'sensor_timout'; "
        "did you mean 'sensor_timeout'?"
    ]


def test_sensor_timeout_in_the_config_reaches_the_sensors(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        "name: app\nservices:\n- {name: digits, model: 'models:/digits@champion', port: 8180}\n"
        "workflows:\n- name: train\n  executors: [{name: fit, script: my_rules.py}]\n"
        "agents:\n- name: r\n  strategy: drift-retrain\n"
        "  config: {service: digits, model: digits, sensor_timeout: 300}\n"
        "- name: custom\n  sensors: [my_rules:level]\n  rules: [my_rules:high]\n"
        "  config: {sensor_timeout: 120}\n",
    )
    retrainer, custom = load_agents(project)
    traffic = retrainer.registry.sensors["traffic"]
    assert retrainer.sensor_timeout_of(traffic) == 300
    assert custom.sensor_timeout_of(custom.registry.sensors["level"]) == 3  # its own wins


def test_validate_reports_the_agents_problems_too(tmp_path: Path, capsys) -> None:
    from scanflow.cli.main import main

    project = _project(tmp_path, BAD)
    code = main(["--app", str(project.base_dir), "validate"])
    err = capsys.readouterr().err
    assert code == 2
    assert "(13 problems)" in err
    assert "scanflow.yaml:10: agents[1].strategy: unknown strategy 'drift-retrian'" in err
    assert "Traceback" not in err
