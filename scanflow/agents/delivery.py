"""Delivering messages: in-process to co-located agents, over HTTP to the others.

Every message goes to the sender's outbox first. Delivery is retried with exponential
backoff and a timeout per attempt; after the last attempt it is dead-lettered (status
``dead`` in the outbox, an event, a warning), visible in ``scanflow agents status``.
Receivers drop messages whose id they saw before, so a retry never acts twice.

Over HTTP the sender presents the application's token; a receiver that refuses it (401)
will refuse every retry too, so such a message is dead-lettered at once with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scanflow.agents.messages import Message
from scanflow.agents.state import AgentState, endpoint

if TYPE_CHECKING:
    from scanflow.api.agent_client import AgentClient

log = logging.getLogger(__name__)

Receiver = Callable[[Message], Awaitable[bool]]


class LocalBus:
    """Agents of one process, reachable without HTTP."""

    def __init__(self) -> None:
        self._receivers: dict[str, Receiver] = {}

    def join(self, agent: str, receive: Receiver) -> None:
        """Make ``agent`` reachable in this process."""
        self._receivers[agent] = receive

    def leave(self, agent: str) -> None:
        """``agent`` stops receiving here."""
        self._receivers.pop(agent, None)

    def get(self, agent: str) -> Receiver | None:
        """How to reach ``agent`` in-process, if it lives here."""
        return self._receivers.get(agent)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in all, waits growing from ``backoff`` to ``max_backoff``."""

    attempts: int = 5
    backoff: float = 0.2
    max_backoff: float = 5.0
    timeout: float = 5.0

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1))


class DeliveryError(Exception):
    """One attempt failed; ``final`` when retrying cannot help (the receiver refused it)."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class Postman:
    """Sends the messages of one agent and keeps the outbox up to date."""

    def __init__(
        self,
        state: AgentState,
        bus: LocalBus,
        policy: RetryPolicy | None = None,
        token: str | None = None,
    ) -> None:
        """``token``: the application's token, sent to agents reached over HTTP."""
        self.state = state
        self.bus = bus
        self.policy = policy or RetryPolicy()
        self._token = token
        self._clients: dict[str, AgentClient] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def send(self, message: Message) -> None:
        """Queue ``message`` in the outbox and start delivering it."""
        await asyncio.to_thread(self.state.enqueue, message)
        self._start(message)

    async def resume(self) -> None:
        """Deliver what was still pending when the agent stopped."""
        for row in await asyncio.to_thread(self.state.outbox, "pending"):
            self._start(Message.model_validate(row.body))

    def _start(self, message: Message) -> None:
        task = asyncio.get_running_loop().create_task(self.deliver(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, message: Message) -> bool:
        """Try until delivered or out of attempts; True when delivered."""
        error = ""
        attempt = 0
        for attempt in range(1, self.policy.attempts + 1):
            try:
                await asyncio.wait_for(self._attempt(message), self.policy.timeout)
                await asyncio.to_thread(self.state.delivery, message.id, "delivered", attempt, None)
                return True
            except DeliveryError as exc:
                error = str(exc)
                if exc.final:
                    break
            except TimeoutError:
                error = f"no answer within {self.policy.timeout:g}s"
            except Exception as exc:  # noqa: BLE001 - any transport failure is retried
                error = f"{type(exc).__name__}: {exc}"
            log.info(
                "delivery of %s to %s failed (attempt %d/%d): %s",
                message.intent,
                message.receiver,
                attempt,
                self.policy.attempts,
                error,
            )
            await asyncio.to_thread(self.state.delivery, message.id, "pending", attempt, error)
            if attempt < self.policy.attempts:
                await asyncio.sleep(self.policy.wait(attempt))
        log.warning(
            "message %s (%s) to %s dead-lettered: %s",
            message.id,
            message.intent,
            message.receiver,
            error,
        )
        await asyncio.to_thread(self.state.delivery, message.id, "dead", attempt, error)
        await asyncio.to_thread(
            self.state.event,
            "dead_letter",
            message_id=message.id,
            receiver=message.receiver,
            intent=message.intent,
            error=error,
        )
        return False

    async def _attempt(self, message: Message) -> None:
        local = self.bus.get(message.receiver)
        if local is not None:
            await local(message)
            return
        record = await asyncio.to_thread(endpoint, self.state.store, message.receiver)
        if record is None or not record.url:
            raise DeliveryError(f"agent {message.receiver!r} has no known address (not running?)")
        await self._post(record.url, message)

    async def _post(self, url: str, message: Message) -> None:
        from scanflow.api.agent_client import AgentClient
        from scanflow.api.errors import ApiError, Unreachable

        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = AgentClient(url, self._token, self.policy.timeout)
        try:
            await client.deliver(message)
        except Unreachable as exc:
            raise DeliveryError(str(exc)) from None
        except ApiError as exc:  # refused: only a timeout or a busy receiver may change its mind
            final = 400 <= exc.status < 500 and exc.status not in (408, 429)
            raise DeliveryError(str(exc), final) from None

    async def close(self) -> None:
        """Stop delivering (pending messages stay in the outbox for the next start)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
