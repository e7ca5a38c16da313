"""Every store read of a clinician's request carries the clinician's scope, except the reads
that decide it (the patients named, their person, their consents), which nothing shows.

The tour and the spy are those of tests/auth/test_facility_scope.py, walked by a clinician.
"""

from typing import Any

import pytest
from auth.test_facility_scope import Spy, World, tour, world  # noqa: F401  (a fixture)
from support import client_for

from hub.store.scope import SEE_FIELD, facility_key


async def test_every_read_serving_a_clinician_is_scoped(
    app: Any,
    world: World,  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, str, Any, bool]] = []
    mongo = app.state.mongo
    async with client_for(app, "clinician", facility=world.a.code) as clinician:
        await clinician.get("/fhir/metadata")  # its token first, outside the tour
        for name in ("resources", "history"):
            monkeypatch.setattr(mongo, name, Spy(getattr(mongo, name), seen))
        for path in tour(world):
            response = await clinician.get(path)
            assert response.status_code in (200, 404), (path, response.text)
    serving = [wanted for _, _, wanted, deciding in seen if not deciding]
    assert serving and any(deciding for _, _, _, deciding in seen)
    own = facility_key(world.a.code)
    unscoped = [w for w in serving if not _carries(w, own)]
    assert not unscoped, f"{len(unscoped)} of {len(serving)} reads bypass the scope: {unscoped[:3]}"


def _carries(query: Any, own: str) -> bool:
    """Tell whether a filter is narrowed to visibility keys that include the facility's own."""
    if not isinstance(query, dict):
        return False
    sees = query.get(SEE_FIELD)
    return isinstance(sees, dict) and own in sees.get("$in", [])


def test_the_spy_tells_scoped_from_unscoped() -> None:
    assert _carries({"_id": "x", SEE_FIELD: {"$in": ["f:A", "shared"]}}, "f:A")
    assert not _carries({"_id": "x"}, "f:A")
    assert not _carries({"_id": "x", SEE_FIELD: {"$in": ["f:B"]}}, "f:A")
