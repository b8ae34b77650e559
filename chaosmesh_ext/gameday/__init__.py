"""Game days: a plan of experiments run in order, on demand, on a schedule or as a CronJob.

``plan`` reads and validates plan files; ``cron`` parses 5-field cron expressions;
``runner`` runs a plan with ``chaos run`` (bounded, interruptible, restoring what it must);
``scheduler`` fires runs from the plan's schedule on one host; ``cronjob`` emits the
Kubernetes manifests that run the same plan inside a cluster.
"""

from __future__ import annotations

from chaosmesh_ext.gameday.cron import CronError, CronExpression
from chaosmesh_ext.gameday.plan import Plan, PlanError, load_plan

__all__ = ["CronError", "CronExpression", "Plan", "PlanError", "load_plan"]
