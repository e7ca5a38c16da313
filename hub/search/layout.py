"""The layout of stored search keys, and bringing a database's keys up to date with it.

Keys depend on the registry (parameters.json) and on how values are written (extract.py).
When either changes, keys written before would make searches miss resources, so the hub
rewrites them once before it serves, with progress in the log.
"""

import hashlib
import logging
import time
from pathlib import Path

from hub.store.resources import ResourceStore

log = logging.getLogger("ehrhub.search")
# Raise when extract.py writes keys differently, or the visibility keys written with them
# (hub/store/scope.py) change; the registry's changes are seen by its hash. 4: dates without
# a zone are the deployment's days (hub/search/values.py).
KEY_FORMAT = 4
_REGISTRY = Path(__file__).with_name("parameters.json")
_PROGRESS_SECONDS = 5.0


def layout() -> str:
    """Return the name of the current key layout."""
    digest = hashlib.sha256(_REGISTRY.read_bytes()).hexdigest()[:16]
    return f"{KEY_FORMAT}:{digest}"


async def bring_up_to_date(store: ResourceStore) -> int:
    """Rewrite the stored search keys if they were written in another layout; return how
    many resources were rewritten."""
    wanted = layout()
    found = await store.search_layout()
    if found == wanted:
        return 0
    started = time.monotonic()
    last = [started]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_SECONDS or done == total:
            last[0] = now
            share = done / total if total else 1.0
            log.info("search keys: %s of %s resources rewritten (%.0f%%)", done, total, 100 * share)

    if found is not None:
        log.info("search keys were written in layout %s; rewriting them in %s", found, wanted)
    count = await store.rewrite_search_keys(wanted, progress)
    if count:
        log.info(
            "search keys rewritten for %s resources in %.1f s", count, time.monotonic() - started
        )
    return count
