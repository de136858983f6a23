"""Pipelines: the lifecycle automated — recipes in YAML, a runner on the job system, triggers, an agent.

The room sits above every lifecycle room: a step calls the datasets, experiments, registry,
bundles, serving and monitoring services through the job system, and nothing below imports it.

* :mod:`.spec` — the pipeline as plain data (steps, triggers, statuses, step kinds' params).
* :mod:`.loading` — a YAML file -> :class:`~.spec.Pipeline`, or every problem with file, line, column.
* :mod:`.catalog` — the pipelines the store lists, their runs and steps as plain data.
* :mod:`.runner` — runs a pipeline's graph: parallel branches, retries, timeouts, cancel, resume, cache.
* :mod:`.steps` — what each step kind does (calls the existing jobs).
* :mod:`.triggers` and :mod:`.agent` — schedules, new files and drift start runs, once each.
* :mod:`.alerts` — the notifications a pipeline run's end sends.
"""
