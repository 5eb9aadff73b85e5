"""Schedules run workflows by themselves: on a clock (cron, interval) or on an event
(new files, a registry alias moved, another workflow finished). The declared part lives
in :mod:`scanflow.spec.schedule`; the loop that fires them in :mod:`.scheduler`."""

from scanflow.schedules.scheduler import Scheduler

__all__ = ["Scheduler"]
