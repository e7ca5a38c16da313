"""A person's consent policy: their active patient-privacy Consents, read for the engine.

Who wrote a Consent decides what it governs (docs/consent.md): one the person wrote through
their own login governs every record of theirs; one a facility wrote governs only the records
that facility holds. A policy that cannot be read (a Consent the engine refuses, an actor
whose Organization was deleted since) is None: nothing held elsewhere is shown (fail closed).
"""

import logging
from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from consent import (
    MalformedConsent,
    Policy,
    Record,
    data_references,
    organization_references,
)
from hub.access.persons import Person
from hub.search.compartment import keys as compartment_keys
from hub.settings import Settings
from hub.store.resources import ResourceStore, Stored
from hub.store.scope import UNRESTRICTED, Scope

log = logging.getLogger("ehrhub.access")


async def facility_codes(
    store: ResourceStore,
    facility_system: str,
    references: Iterable[str],
    session: AsyncClientSession | None = None,
) -> dict[str, str]:
    """Return the facility code of each literal Organization reference ("Organization/abc")
    naming a stored Organization with an identifier under the facility system.

    Read outside the caller's scope: a consent names any facility, not only the writer's or
    the reader's, and only the code is taken, never handed out.
    """
    found = await store.currents(sorted(references), UNRESTRICTED, session)
    codes = {}
    for ref, stored in found.items():
        if stored.deleted:
            continue
        for identifier in stored.resource.get("identifier") or ():
            system, value = identifier.get("system"), identifier.get("value")
            if system == facility_system and value:
                codes[ref] = str(value)
                break
    return codes


async def related_references(
    store: ResourceStore,
    references: Iterable[str],
    session: AsyncClientSession | None = None,
    scope: Scope = UNRESTRICTED,
) -> dict[str, frozenset[str]]:
    """Return, for each resource a Consent's `provision.data` names with meaning `related`,
    the references it makes (what "related" covers besides itself), as far as the scope
    shows them (a writer names only what it may see)."""
    found = await store.currents(sorted(references), scope, session)
    return {
        ref: Record.of(stored.resource, stored.facility or "").references
        for ref, stored in found.items()
        if not stored.deleted
    }


def governs(stored: Stored) -> str | None:
    """Return the facility whose records a stored Consent governs: None (all the person's
    records) when the person wrote it themselves, else the facility that wrote it."""
    return None if stored.by_person else stored.facility


async def policy_of(store: ResourceStore, settings: Settings, person: Person) -> Policy | None:
    """Return the policy of a person's Consents, or None when one cannot be read (it might
    deny: the caller then sees nothing of the person held elsewhere)."""
    # By the Consents' own patient key: the compartment key would find every record of theirs.
    keys = compartment_keys(list(person.patients), ["Consent"])
    query: dict[str, Any] = {"_hub.sv": {"$in": keys}, "resourceType": "Consent"}
    stored = await store.find(query, UNRESTRICTED)
    consents = [s.resource for s in stored]
    try:
        organizations = await facility_codes(
            store, settings.facility_system, organization_references(consents)
        )
        related = await related_references(store, data_references(consents))
        return Policy.from_consents(
            consents,
            organizations,
            settings.consent_default,
            facility_system=settings.facility_system,
            zone=settings.zone,
            governs={f"Consent/{s.id}": governs(s) for s in stored},
            related=related,
        )
    except MalformedConsent as error:
        log.warning("unreadable consent of %s: %s", person.patients, error)
        return None
