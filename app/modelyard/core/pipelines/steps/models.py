"""Model steps: ``train``, ``gate``, ``register``, ``bundle`` and ``retrain``."""

from __future__ import annotations

from typing import Any

from modelyard.core.common.errors import GateFailed
from modelyard.core.jobs.runner import JobSpec
from modelyard.core.pipelines.spec import STEP_KINDS
from modelyard.core.pipelines.steps.base import (
    StepBlocked,
    StepContext,
    StepResult,
    need,
    record,
)


def _comment(sc: StepContext, params: dict[str, Any]) -> str:
    return str(params.get("comment") or f"pipeline run {sc.run_id}, step {sc.step.name}")


def do_train(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.experiments.training.spec import TrainSpec, train_spec_job
    from modelyard.core.experiments.training.train import runs_of_job

    known = STEP_KINDS["train"]["required"] + STEP_KINDS["train"]["optional"]
    dataset = need(params, "dataset", "train")
    by_id = isinstance(dataset, int) and not isinstance(dataset, bool)  # an import's dataset_version_id
    which = {"dataset": None, "dataset_version_id": dataset} if by_id else {"dataset": str(dataset)}
    spec = TrainSpec.from_json({**{k: v for k, v in params.items() if k in known}, **which, "cwd": str(sc.folder)})
    result = sc.run_job(train_spec_job(spec))
    runs = runs_of_job(sc.store, sc.job_id) if sc.job_id is not None else []
    run_ids = [r["run_id"] for r in runs] or [result["run_id"]]
    search = result.get("search")
    if search:
        best = search.get("best") or {}
        sc.log(f"Search: best trial {best.get('trial')} ({search.get('metric')} {best.get('score')}); "
               f"run {result['run_id']} holds the model refitted with its parameters.")
    # run_id: the run holding the model (for a search, the parent refitted with the best trial's parameters)
    return StepResult({"run_id": result["run_id"], "run_ids": run_ids, "metrics": result.get("metrics") or {},
                       "experiment": result.get("experiment")},
                      [record("run", r) for r in run_ids])


def do_gate(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.registry.gates_for_run import check_gates_for_run

    report = check_gates_for_run(sc.store, str(need(params, "model", "gate")), str(need(params, "run", "gate")),
                                 gates=params.get("gates"))
    outputs = {"passed": report.passed, "reasons": list(report.reasons), "checked": list(report.checked)}
    for line in report.checked:
        sc.log(f"checked: {line}")
    if not report.passed:
        raise StepBlocked(f"The gates of {params['model']!r} block {report.ref}: " + " ".join(report.reasons),
                          hint="The steps after this gate did not run.", outputs=outputs)
    sc.log("The gates pass." if report.checked else f"{params['model']!r} has no gates: nothing to check.")
    return StepResult(outputs)


def do_register(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.registry import versions as registry

    info = registry.register(sc.store, str(need(params, "run", "register")), str(need(params, "model", "register")),
                             comment=_comment(sc, params), description=params.get("description"))
    sc.log(f"Registered {info.ref} from run {info.run_id}.")
    outputs = {"ref": info.ref, "version": info.version, "model_version_id": info.id, "alias": None}
    records = [record("model_version", info.id)]
    alias = params.get("alias")
    if alias:
        try:
            registry.set_alias(sc.store, info.ref, str(alias), comment=_comment(sc, params))
        except GateFailed as exc:
            raise StepBlocked(f"{info.ref} was registered but not made {alias}: {exc.message}",
                              hint="Fix the cause, or set the alias by hand with --force and a comment.",
                              outputs=outputs, records=records) from None
        outputs["alias"] = str(alias)
        sc.log(f"{info.ref} is now {alias}.")
    return StepResult(outputs, records)


def do_bundle(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.bundles import export_bundle_spec
    from modelyard.core.registry import versions as registry

    info = registry.get_version(sc.store, str(need(params, "ref", "bundle")))
    folder = sc.path(need(params, "folder", "bundle"))
    folder.mkdir(parents=True, exist_ok=True)
    name = params.get("filename") or f"{info.name}-v{info.version}.mybundle"
    key = params.get("signing_key")
    result = sc.run_job(export_bundle_spec(info.ref, folder / str(name),
                                           signing_key=sc.path(key) if key else None, force=True))
    sc.log(f"Wrote {result['path']} ({result['size']:,} bytes{', signed' if result.get('signed') else ''}).")
    return StepResult({"path": result["path"], "sha256": result["sha256"], "size": result["size"]},
                      [record("bundle", result["sha256"])])  # the key lineage knows a bundle by


def do_retrain(sc: StepContext, params: dict[str, Any]) -> StepResult:
    from modelyard.core.monitoring.retraining import retrain_spec

    check = need(params, "check", "retrain")
    spec: JobSpec = retrain_spec(int(check), data=str(params.get("data") or "batch"), comment=params.get("comment"))
    result = sc.run_job(spec)
    from modelyard.core.registry import versions as registry

    run_id, ref = result["run_id"], result["ref"]
    records = [record("run", run_id), record("model_version", registry.get_version(sc.store, ref).id)]
    return StepResult({"run_id": run_id, "ref": ref}, records)
