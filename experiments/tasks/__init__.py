"""Framework-free tasks: ``load_task(name, seed, **params)``; importing registers them all."""

from experiments.tasks import real, synthetic  # noqa: F401  (registers)
from experiments.tasks.base import (
    Split,
    TaskData,
    evaluate,
    load_task,
    register_task,
    task_loss,
    task_names,
    task_summary,
)

__all__ = ["Split", "TaskData", "evaluate", "load_task", "register_task", "task_loss", "task_names", "task_summary"]
