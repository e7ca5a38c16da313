"""The FHIR R4B models of fhir.resources, with one of their checks done by the hub instead.

fhir_core checks every object of a resource for nulls in lists of complex elements, walking
each model's fields again per object: a fifth of the time of validating a Synthea bundle. The hub
already walks every resource once before validating it (`hub.fhir.references.walk`) and refuses
all nulls FHIR JSON does not allow there, so that check is replaced by a no-op. Pydantic binds a
model validator by name when each model class is built, so the replacement must happen before
the first model is built, which importing this module ensures.
"""

from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel


def _nulls_checked_by_the_hub(cls: type, data: Any) -> Any:
    return data


FHIRAbstractModel.reject_null_complex_elements = classmethod(_nulls_checked_by_the_hub)  # type: ignore[method-assign,assignment]

from fhir.resources.R4B import get_fhir_model_class  # noqa: E402

__all__ = ["get_fhir_model_class"]
