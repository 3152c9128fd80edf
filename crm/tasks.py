"""Celery tasks of the crm app (take ids, re-check state)."""

from celery import shared_task

from quicksend.periodic import locked_job


@shared_task(acks_late=True)
def run_import_task(job_id: int) -> dict:
    from crm.imports import run_import

    job = run_import(job_id)
    if job is None:
        return {"job": job_id, "skipped": True}
    return {"job": job_id, "status": job.status, "imported": job.imported, "rejected": job.rejected}


@shared_task
@locked_job("crm.purge_abandoned_imports", seconds=600)
def purge_abandoned_imports() -> dict:
    """Periodic: delete uploads that were never started (they hold personal data)."""
    from crm.imports import purge_abandoned_uploads

    return {"purged": purge_abandoned_uploads()}
