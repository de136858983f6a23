"""A failed job's error is shown with its hint once, never twice."""

from modelyard.core.jobs.runner import JobOutcome


def test_the_message_leaves_the_hint_to_be_shown_once():
    outcome = JobOutcome(job_id=3, status="failed", error="x.csv has no column 'y'.\nPick the target column.",
                         hint="Pick the target column.")
    assert outcome.message == "x.csv has no column 'y'."
    assert JobOutcome(job_id=4, status="failed", error="Boom.").message == "Boom."
    assert JobOutcome(job_id=5, status="failed").message == "The job ended failed."
