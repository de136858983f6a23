"""The pipelines the store lists, and their runs and steps, as plain data.

:func:`save_pipeline` records (or updates) a validated pipeline under its name; the queries
return frozen dataclasses that are safe to hand to another thread.
"""

from __future__ import annotations

from sqlalchemy import select

from modelyard.core.common.procs import current_user
from modelyard.core.pipelines.spec import Pipeline
from modelyard.core.store import Store, records
from modelyard.core.store import models as m


def save_pipeline(store: Store, pipeline: Pipeline) -> int:
    """List ``pipeline`` in the store under its name (updating its file, spec and hash when it is
    listed already) and return its id. Audited when it is added or its file changed."""
    with store.write() as s:
        row = s.scalar(select(m.Pipeline).where(m.Pipeline.name == pipeline.name))
        spec = pipeline.to_json()
        if row is None:
            row = m.Pipeline(name=pipeline.name, path=pipeline.path, description=pipeline.description, spec=spec,
                             spec_sha256=pipeline.sha256, created_by=current_user())
            s.add(row)
            s.flush()
            records.audit(s, "pipeline", row.id, "add_pipeline", to_value=pipeline.path,
                          details={"sha256": pipeline.sha256})
        elif row.spec_sha256 != pipeline.sha256 or row.path != pipeline.path or row.spec != spec:
            records.audit(s, "pipeline", row.id, "update_pipeline", from_value=row.spec_sha256,
                          to_value=pipeline.sha256, details={"path": pipeline.path})
            row.path, row.description, row.spec, row.spec_sha256 = (pipeline.path, pipeline.description, spec,
                                                                     pipeline.sha256)
            row.updated_at = m.utcnow()
        return row.id
