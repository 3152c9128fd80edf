"""Celery tasks of tenancy: the periodic purge of spent launch tokens and ended embed sessions."""

from __future__ import annotations

from celery import shared_task

from quicksend.periodic import locked_job


@shared_task
@locked_job("embed-purge", seconds=15 * 60)
def purge_embed_launches() -> dict:
    from tenancy.embed import purge_expired

    return purge_expired()
