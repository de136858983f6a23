"""Reviewed promotions: the evidence a version is judged on, requests to move ``champion`` or the
Production stage, their approval or rejection, and the snapshots that replay each decision.

* :mod:`.evidence`: the stored evidence of a version (:class:`~.evidence.EvidenceInfo`);
* :mod:`.compute`: computing it (held-out rows, bootstrap intervals, group metrics, explanations);
* :mod:`.fairness`, :mod:`.explain`: the group metrics (fairlearn) and the explanations (scikit-learn);
* :mod:`.snapshot`: what a request or a decision was made on, as one JSON document;
* :mod:`.requests`: promotion requests, approval and rejection.

See docs/governance.md.
"""
