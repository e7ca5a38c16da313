"""The resource types of FHIR R4 and which of them the hub can validate and store."""

from functools import cache

from fhir_core.fhirabstractmodel import FHIRAbstractModel

from hub.fhir.models import get_fhir_model_class

# FHIR R4 (4.0.1) resource types: https://hl7.org/fhir/R4/resourcelist.html
R4_RESOURCE_TYPES = frozenset(
    """
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
    AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement
    CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse
    ClinicalImpression CodeSystem Communication CommunicationRequest CompartmentDefinition
    Composition ConceptMap Condition Consent Contract Coverage CoverageEligibilityRequest
    CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric DeviceRequest
    DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference EffectEvidenceSynthesis
    Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence
    EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal
    GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization
    ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice
    Library Linkage List Location Measure MeasureReport Media Medication MedicationAdministration
    MedicationDispense MedicationKnowledge MedicationRequest MedicationStatement MedicinalProduct
    MedicinalProductAuthorization MedicinalProductContraindication MedicinalProductIndication
    MedicinalProductIngredient MedicinalProductInteraction MedicinalProductManufactured
    MedicinalProductPackaged MedicinalProductPharmaceutical MedicinalProductUndesirableEffect
    MessageDefinition MessageHeader MolecularSequence NamingSystem NutritionOrder Observation
    ObservationDefinition OperationDefinition OperationOutcome Organization
    OrganizationAffiliation Parameters Patient PaymentNotice PaymentReconciliation Person
    PlanDefinition Practitioner PractitionerRole Procedure Provenance Questionnaire
    QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition ResearchElementDefinition
    ResearchStudy ResearchSubject RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter
    ServiceRequest Slot Specimen SpecimenDefinition StructureDefinition StructureMap Subscription
    Substance SubstanceNucleicAcid SubstancePolymer SubstanceProtein
    SubstanceReferenceInformation SubstanceSourceMaterial SubstanceSpecification SupplyDelivery
    SupplyRequest Task TerminologyCapabilities TestReport TestScript ValueSet VerificationResult
    VisionPrescription
    """.split()
)

# Types that are exchanged as messages or operation parameters, never stored as such.
NOT_STORED = frozenset({"Bundle", "OperationOutcome", "Parameters"})
# Types the hub computes from its counters and serves read-only (hub/reporting/measures.py).
COMPUTED = frozenset({"Measure", "MeasureReport"})
# R4 types whose R4B model was redesigned, so valid R4 instances would be refused.
REDESIGNED_IN_R4B = frozenset({"Evidence", "EvidenceVariable"})


@cache
def model_class(resource_type: str) -> type[FHIRAbstractModel] | None:
    """Return the fhir.resources model that validates an R4 type, or None if it has none."""
    if resource_type not in R4_RESOURCE_TYPES or resource_type in REDESIGNED_IN_R4B:
        return None
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        # R4 types that the R4B models dropped (MedicinalProduct*, Substance*, ...).
        return None


def stored_types() -> list[str]:
    """Return, sorted, every resource type the hub stores."""
    stored = R4_RESOURCE_TYPES - NOT_STORED - COMPUTED
    return sorted(t for t in stored if model_class(t) is not None)
