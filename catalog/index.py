"""The catalog's search index, kept in the same transaction as every catalog write.

``refresh(session, product_ids)`` must be called after products or their variants are created or changed (the
importer, the demo seed, the console). It is being built with the database search (issue: a real catalog); until
then it has nothing to maintain.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy.orm import Session


def refresh(session: Session, product_ids: Iterable[int]) -> None:
    """Bring the index up to date for these products, in the caller's transaction."""
    return None
