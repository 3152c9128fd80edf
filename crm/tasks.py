"""Celery tasks of the crm app (take ids, re-check state)."""

from celery import shared_task


@shared_task(acks_late=True)
def run_import_task(job_id: int) -> dict:
    from crm.imports import run_import

    job = run_import(job_id)
    if job is None:
        return {"job": job_id, "skipped": True}
    return {"job": job_id, "status": job.status, "imported": job.imported, "rejected": job.rejected}
