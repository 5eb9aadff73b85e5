"""Commands about agents: ``agents up|status|check`` and ``decisions [approve|reject|revert]``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from scanflow.cli import context, remote
from scanflow.cli.output import OutputFormat, console, print_json


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp).strftime("%H:%M:%S") if stamp else "-"


def register(app: typer.Typer) -> None:
    """Add the ``agents`` group and ``decisions``."""
    group = typer.Typer(
        help="Run and inspect the agents that supervise the application.", no_args_is_help=True
    )
    app.add_typer(group, name="agents")

    @group.command("up")
    def up(
        ctx: typer.Context,
        names: list[str] = typer.Argument(None, help="Agents to run (default: all)."),
        port: int | None = typer.Option(
            None, help="Port of the agent's HTTP API (one agent only; default: declared or free)."
        ),
        no_audit: bool = typer.Option(
            False, "--no-audit", help="Do not mirror decisions to MLflow."
        ),
        target: str = typer.Option(
            None, "--target", "-t", help="Engine the agents act on (default: the app's 'target')."
        ),
    ) -> None:
        """Run agents in this process until Ctrl-C (state in .scanflow, resumes on restart)."""
        import asyncio

        from scanflow.agents.config import load_agents
        from scanflow.agents.service import run_agents

        proj = context.project(ctx)
        if target:
            from scanflow.engines.registry import check_name

            check_name(target)
        setups = load_agents(proj, names or None)
        if not setups:
            console.print("no agents declared in scanflow.yaml")
            raise typer.Exit(0)
        console.print(f"running agent(s) {', '.join(s.name for s in setups)}; Ctrl-C stops")
        asyncio.run(run_agents(proj, setups, port=port, audit=not no_audit, target=target))

    @group.command("check")
    def check(ctx: typer.Context) -> None:
        """Validate the agents: strategies, configuration, references and triggers."""
        from scanflow.agents.config import load_agents

        setups = load_agents(context.project(ctx))
        for setup in setups:
            what = setup.strategy or f"{len(setup.registry.rules)} rule(s)"
            console.print(f"[green]valid[/]: agent [bold]{setup.name}[/] ({setup.role}, {what})")

    @group.command("pause")
    def pause(
        ctx: typer.Context,
        name: str = typer.Argument(..., metavar="AGENT", help="The agent's name."),
        reason: str | None = typer.Option(None, "--reason", help="Why (kept as evidence)."),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Pause an agent: it senses, decides and starts no plan step until resumed."""
        remote.act(ctx, server, token, lambda a, app: a.pause_agent(app, name, reason))

    @group.command("resume")
    def resume(
        ctx: typer.Context,
        name: str = typer.Argument(..., metavar="AGENT", help="The agent's name."),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Resume a paused agent where it stopped."""
        remote.act(ctx, server, token, lambda a, app: a.resume_agent(app, name))

    @group.command("status")
    def status(
        ctx: typer.Context,
        output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Agents that ran here: address, liveness, open plans, dead letters, errors."""
        from rich.table import Table

        from scanflow.api.agents import agent_views

        if server:
            with remote.connect(ctx, server, token) as (client, name):
                views = [v for v in client.agents(name) if v.pid is not None]  # those that ran
        else:
            views = agent_views(context.store(ctx), app="")
        rows: list[dict[str, Any]] = [
            {
                "agent": v.name,
                "url": v.url,
                "pid": v.pid,
                "alive": v.alive,
                "heartbeat_at": v.heartbeat_at,
                "open_decisions": v.open_decisions,
                "dead_letters": [d.model_dump() for d in v.letters],
                "errors": v.errors,
                "paused": v.paused,
            }
            for v in views
        ]
        if output is OutputFormat.json:
            print_json(rows)
            return
        if not rows:
            console.print(
                "no agent has run in this application yet; start them with "
                "[bold]scanflow agents up[/]"
            )
            return
        table = Table("agent", "url", "pid", "alive", "open plans", "dead letters", "last error")
        for r in rows:
            err = r["errors"][0] if r["errors"] else None
            alive = "[green]yes[/]" if r["alive"] else "[red]no[/]"
            table.add_row(
                r["agent"],
                r["url"] or "-",
                str(r["pid"]),
                alive + (" [yellow](paused)[/]" if r["paused"] else ""),
                str(r["open_decisions"]),
                str(len(r["dead_letters"])),
                f"{err['kind']}: {err.get('error', '')}" if err else "-",
            )
        console.print(table)

    decisions_group = typer.Typer(
        help="The agents' decisions; approve or reject a plan that waits for a person, "
        "revert an alias move.",
        invoke_without_command=True,
    )
    app.add_typer(decisions_group, name="decisions")

    @decisions_group.callback()
    def decisions(
        ctx: typer.Context,
        agent: str | None = typer.Option(None, help="Only this agent's decisions."),
        limit: int = typer.Option(50, help="How many (newest)."),
        output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o"),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """The agents' decisions as a timeline: when, who, why, what, outcome."""
        if ctx.invoked_subcommand is None:
            show_decisions(ctx, agent, limit, output, server, token)

    @decisions_group.command("approve")
    def approve(
        ctx: typer.Context,
        decision_id: str = typer.Argument(..., metavar="DECISION", help="Its id (or prefix)."),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Let the agent carry out a plan that waits for a person's approval."""
        remote.act(ctx, server, token, lambda a, name: a.approve(name, decision_id))

    @decisions_group.command("reject")
    def reject(
        ctx: typer.Context,
        decision_id: str = typer.Argument(..., metavar="DECISION", help="Its id (or prefix)."),
        reason: str | None = typer.Option(None, "--reason", help="Why (kept as evidence)."),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Refuse a plan that waits for a person's approval: the agent never runs it."""
        remote.act(ctx, server, token, lambda a, name: a.reject(name, decision_id, reason))

    @decisions_group.command("revert")
    def revert(
        ctx: typer.Context,
        decision_id: str = typer.Argument(..., metavar="DECISION", help="Its id (or prefix)."),
        server: str = remote.server_option(),
        token: str = remote.token_option(),
    ) -> None:
        """Undo a decision's alias move (point the alias back where it was)."""
        remote.act(ctx, server, token, lambda a, name: a.revert(name, decision_id))


def show_decisions(
    ctx: typer.Context,
    agent: str | None,
    limit: int,
    output: OutputFormat,
    server: str | None,
    token: str | None,
) -> None:
    """Print the decisions' timeline (oldest first)."""
    from rich.table import Table

    from scanflow.api.agents import decision_view

    if server:
        with remote.connect(ctx, server, token) as (client, name):
            views = client.decisions(name, agent, limit)[::-1]  # oldest first
    else:
        from scanflow.agents.state import all_decisions

        views = [decision_view(r) for r in all_decisions(context.store(ctx), agent, limit=limit)]
    if output is OutputFormat.json:
        print_json([v.model_dump() for v in views])
        return
    if not views:
        console.print("no decisions yet")
        return
    from rich import box

    table = Table(
        "time", "id", "agent", "decision", "reason", "status", "outcome",
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
    )  # fmt: skip
    colour = {"succeeded": "green", "failed": "red", "blocked": "yellow", "rejected": "red"}
    for v in views:
        c = colour.get(v.status, "cyan")
        table.add_row(
            _when(v.created_at),
            v.id[:8],
            v.agent,
            v.action,
            v.reason,
            f"[{c}]{v.status}[/]",
            v.outcome or "-",
        )
    console.print(table)


def show_demo(result) -> None:  # noqa: ANN001 - DemoResult, imported lazily
    """Print the closed-loop demo's timeline and summary."""
    from rich.table import Table

    timeline = Table("t (s)", "who", "event", "evidence", title="timeline")
    for moment in result.timeline:
        timeline.add_row(
            f"{moment.at - result.started_at:6.1f}", moment.source, moment.event, moment.evidence
        )
    console.print(timeline)
    s = result.summary

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    def acc(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    summary = Table("measure", "value", "goal", title="summary")
    summary.add_row("drift onset -> detected", secs(s["detection_delay_s"]), "< 30 s")
    summary.add_row("detected -> new model serving", secs(s["time_to_new_model_live_s"]), "< 120 s")
    summary.add_row("failed requests", f"{s['failed_requests']} of {s['requests']}", "0")
    summary.add_row("accuracy before drift", acc(s["accuracy_before_drift"]), "")
    summary.add_row("accuracy on drifted data, old model", acc(s["accuracy_drifted_old_model"]), "")
    summary.add_row("accuracy on drifted data, new model", acc(s["accuracy_drifted_new_model"]), "")
    summary.add_row(
        "workers (max) / scale decisions", f"{s['max_workers']} / {s['scale_decisions']}", ""
    )
    console.print(summary)
    console.print(f"plot: [bold]{result.plot}[/]  report: {result.report}")
