"""Opening a case and the beginning phase's work: inventory, focus, contract,
deviations (domain.md §3, §4)."""

from __future__ import annotations

import pytest

from ipt_workflow.domain import events
from ipt_workflow.domain.case import TherapyCase
from ipt_workflow.domain.commands import (
    AgreeContract,
    AgreeFocus,
    RecordDeviation,
    RecordInventory,
)
from ipt_workflow.domain.errors import GuardFailed
from tests.unit.builders import (
    PROTOCOL_NAMES,
    SPECS,
    agree_focus,
    concluded_in_remission,
    ctx,
    in_middle,
    names,
    new_events,
    open_case,
    record_inventory,
    recorded,
    relationship,
    rules_of,
)

AGES_ACCEPTED = [
    ("ipt", 18),
    ("ipt", 120),
    ("ipt-a", 12),
    ("ipt-a", 18),
    ("fb-ipt", 7),
    ("fb-ipt", 12),
    ("ipt-g", 18),
    ("ipt-g", 120),
    ("ipt-b", 18),
    ("ipt-b", 120),
]

AGES_REFUSED = [
    ("ipt", 17),
    ("ipt", 121),
    ("ipt-a", 11),
    ("ipt-a", 19),
    ("fb-ipt", 6),
    ("fb-ipt", 13),
    ("ipt-g", 17),
    ("ipt-g", 121),
    ("ipt-b", 17),
    ("ipt-b", 121),
]

CONTRACT_RANGES = [
    ("ipt", 12, 16),
    ("ipt-a", 12, 16),
    ("fb-ipt", 12, 16),
    ("ipt-g", 16, 20),
    ("ipt-b", 8, 8),
]


def with_inventory(protocol: str = "ipt", deceased: bool = False) -> TherapyCase:
    case = open_case(protocol)
    record_inventory(case, deceased=deceased)
    return case


class TestOpenCase:
    @pytest.mark.parametrize(("protocol", "age"), AGES_ACCEPTED)
    def test_a_client_whose_age_is_within_the_protocols_range_is_accepted(
        self, protocol: str, age: int
    ) -> None:
        case = open_case(protocol, age=age)

        assert case.phase == "beginning"
        assert case.protocol_id == f"{protocol}@1"
        assert case.client_age == age
        assert names(new_events(case)) == ["CaseOpened"]

    @pytest.mark.parametrize(("protocol", "age"), AGES_REFUSED)
    def test_a_client_whose_age_is_outside_the_protocols_range_is_refused(
        self, protocol: str, age: int
    ) -> None:
        with pytest.raises(GuardFailed) as refused:
            open_case(protocol, age=age)

        assert rules_of(refused.value) == ["age_outside_protocol"]

    def test_the_age_refusal_names_the_protocols_range_and_the_clients_age(
        self,
    ) -> None:
        with pytest.raises(GuardFailed) as refused:
            open_case("ipt-a", age=19)

        message = refused.value.violations[0].message
        assert "12–18" in message
        assert "19" in message

    def test_a_bare_protocol_name_means_its_latest_version(self) -> None:
        case = open_case("fb-ipt")

        assert case.protocol_id == "fb-ipt@1"

    def test_a_protocol_named_with_its_version_is_used_as_named(self) -> None:
        case = open_case("ipt-g@1")

        assert case.protocol_id == "ipt-g@1"
        assert case.protocol.contract_sessions.high == 20

    def test_opening_records_the_prior_episodes_and_the_clinician(self) -> None:
        case = open_case("ipt", prior_episodes=3)

        assert case.prior_episodes == 3
        assert case.clinician_id == "clinician-1"
        assert case.client_ref == "client-1"
        assert case.clinic_id == "clinic-1"


class TestRecordInventory:
    def test_the_inventory_records_relationships_and_styles(self) -> None:
        case = open_case()

        case.record_inventory(
            ctx(),
            RecordInventory.parse(
                relationships=[
                    relationship("partner", conflict=True),
                    relationship("friend"),
                ],
                attachment_style="anxious",
                communication_style="passive",
            ),
        )

        assert case.inventory is not None
        assert [r["role"] for r in case.inventory["relationships"]] == [
            "partner",
            "friend",
        ]
        assert case.inventory["relationships"][0]["conflict"] is True
        assert case.inventory["relationships"][1]["deceased"] is False
        assert case.inventory["attachment_style"] == "anxious"
        assert case.inventory["communication_style"] == "passive"
        assert names(new_events(case))[-1] == "InterpersonalInventoryRecorded"

    def test_recording_it_again_replaces_the_earlier_one_and_keeps_both(
        self,
    ) -> None:
        case = open_case()
        case.record_inventory(
            ctx(), RecordInventory.parse(relationships=[relationship("partner")])
        )

        case.record_inventory(
            ctx(),
            RecordInventory.parse(
                relationships=[relationship("sibling"), relationship("peer")]
            ),
        )

        assert case.inventory is not None
        assert [r["role"] for r in case.inventory["relationships"]] == [
            "sibling",
            "peer",
        ]
        assert names(new_events(case)).count("InterpersonalInventoryRecorded") == 2

    def test_recording_it_in_the_middle_phase_is_refused(self) -> None:
        case = in_middle()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.record_inventory(
                ctx(), RecordInventory.parse(relationships=[relationship("friend")])
            )

        assert rules_of(refused.value) == ["wrong_phase"]
        assert recorded(case) == before


class TestAgreeFocus:
    def test_a_focus_with_the_clients_agreement_is_recorded(self) -> None:
        case = with_inventory()

        agree_focus(case, "role_transition")

        assert case.focus is not None
        assert case.focus["primary_area"] == "role_transition"
        assert names(new_events(case))[-1] == "FocusAgreed"

    def test_a_focus_before_the_inventory_is_refused(self) -> None:
        case = open_case()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            agree_focus(case, "role_transition")

        assert rules_of(refused.value) == ["inventory_required"]
        assert recorded(case) == before

    def test_grief_without_a_relationship_marked_deceased_is_refused(self) -> None:
        case = with_inventory(deceased=False)

        with pytest.raises(GuardFailed) as refused:
            agree_focus(case, "grief")

        assert rules_of(refused.value) == ["grief_needs_deceased_relationship"]

    def test_grief_with_a_relationship_marked_deceased_is_agreed(self) -> None:
        case = with_inventory(deceased=True)

        agree_focus(case, "grief")

        assert case.focus is not None
        assert case.focus["primary_area"] == "grief"

    def test_grief_as_the_secondary_area_also_needs_a_deceased_relationship(
        self,
    ) -> None:
        case = with_inventory(deceased=False)

        with pytest.raises(GuardFailed) as refused:
            agree_focus(
                case,
                "role_transition",
                secondary_area="grief",
                secondary_reason="linked_to_onset",
            )

        assert rules_of(refused.value) == ["grief_needs_deceased_relationship"]

    def test_a_role_dispute_without_its_stage_is_refused(self) -> None:
        case = with_inventory()

        with pytest.raises(GuardFailed) as refused:
            agree_focus(case, "role_dispute")

        assert rules_of(refused.value) == ["dispute_stage_required"]

    @pytest.mark.parametrize("stage", ["renegotiation", "impasse", "dissolution"])
    def test_a_role_dispute_with_its_stage_is_agreed(self, stage: str) -> None:
        case = with_inventory()

        agree_focus(case, "role_dispute", dispute_stage=stage)

        assert case.focus is not None
        assert case.focus["dispute_stage"] == stage

    def test_a_role_dispute_as_the_secondary_area_also_needs_its_stage(
        self,
    ) -> None:
        case = with_inventory()

        with pytest.raises(GuardFailed) as refused:
            agree_focus(
                case,
                "role_transition",
                secondary_area="role_dispute",
                secondary_reason="comorbid_problem",
            )

        assert rules_of(refused.value) == ["dispute_stage_required"]

    def test_a_dispute_stage_without_a_role_dispute_is_refused(self) -> None:
        case = with_inventory()

        with pytest.raises(GuardFailed) as refused:
            agree_focus(case, "role_transition", dispute_stage="impasse")

        assert rules_of(refused.value) == ["dispute_stage_without_role_dispute"]

    def test_a_secondary_area_without_a_reason_is_refused(self) -> None:
        case = with_inventory()

        with pytest.raises(GuardFailed) as refused:
            agree_focus(
                case, "role_transition", secondary_area="interpersonal_deficits"
            )

        assert rules_of(refused.value) == ["secondary_reason_required"]

    def test_a_secondary_area_with_a_reason_is_agreed(self) -> None:
        case = with_inventory()

        agree_focus(
            case,
            "role_transition",
            secondary_area="interpersonal_deficits",
            secondary_reason="client_preference",
        )

        assert case.focus is not None
        assert case.focus["secondary_area"] == "interpersonal_deficits"
        assert case.focus["secondary_reason"] == "client_preference"

    def test_a_secondary_reason_other_may_carry_a_note_in_the_event(self) -> None:
        case = with_inventory()

        agree_focus(
            case,
            "role_transition",
            secondary_area="interpersonal_deficits",
            secondary_reason="other",
            note="short note",
        )

        event = new_events(case)[-1]
        assert isinstance(event, events.FocusAgreed)
        assert event.secondary_note == "short note"
        assert case.focus is not None
        assert "short note" not in case.focus.values()

    def test_a_secondary_reason_without_a_secondary_area_is_refused(self) -> None:
        case = with_inventory()

        with pytest.raises(GuardFailed) as refused:
            agree_focus(case, "role_transition", secondary_reason="linked_to_onset")

        assert rules_of(refused.value) == ["secondary_reason_without_area"]

    def test_a_secondary_area_repeating_the_primary_is_refused(self) -> None:
        case = with_inventory()

        with pytest.raises(GuardFailed) as refused:
            agree_focus(
                case,
                "role_transition",
                secondary_area="role_transition",
                secondary_reason="linked_to_onset",
            )

        assert rules_of(refused.value) == ["secondary_area_repeats_primary"]

    def test_a_focus_without_the_clients_agreement_is_refused(self) -> None:
        case = with_inventory()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.agree_focus(
                ctx(),
                AgreeFocus.parse(primary_area="role_transition", client_agreed=False),
            )

        assert rules_of(refused.value) == ["client_agreement_required"]
        assert recorded(case) == before

    def test_every_unmet_focus_rule_is_listed_at_once(self) -> None:
        case = with_inventory(deceased=False)

        with pytest.raises(GuardFailed) as refused:
            case.agree_focus(
                ctx(),
                AgreeFocus.parse(
                    primary_area="grief",
                    client_agreed=False,
                    secondary_area="role_dispute",
                ),
            )

        assert sorted(rules_of(refused.value)) == [
            "client_agreement_required",
            "dispute_stage_required",
            "grief_needs_deceased_relationship",
            "secondary_reason_required",
        ]

    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    @pytest.mark.parametrize(
        "area", ["grief", "role_dispute", "role_transition", "interpersonal_deficits"]
    )
    def test_every_problem_area_is_allowed_in_every_protocol(
        self, protocol: str, area: str
    ) -> None:
        case = with_inventory(protocol, deceased=True)
        stage = "impasse" if area == "role_dispute" else None

        agree_focus(case, area, dispute_stage=stage)

        assert case.focus is not None
        assert case.focus["primary_area"] == area

    def test_agreeing_a_focus_in_the_middle_phase_is_refused(self) -> None:
        case = in_middle()

        with pytest.raises(GuardFailed) as refused:
            agree_focus(case, "interpersonal_deficits")

        assert rules_of(refused.value) == ["wrong_phase"]


class TestAgreeContract:
    @pytest.mark.parametrize("protocol", PROTOCOL_NAMES)
    def test_without_a_count_the_protocols_default_is_agreed(
        self, protocol: str
    ) -> None:
        case = open_case(protocol)

        case.agree_contract(ctx(), AgreeContract.parse())

        assert case.contract == {
            "sessions": SPECS[protocol].default_contract,
            "frequency": "weekly",
        }
        assert names(new_events(case))[-1] == "ContractAgreed"

    @pytest.mark.parametrize(("protocol", "low", "high"), CONTRACT_RANGES)
    def test_the_ends_of_the_protocols_range_are_agreed(
        self, protocol: str, low: int, high: int
    ) -> None:
        at_low, at_high = open_case(protocol), open_case(protocol)

        at_low.agree_contract(ctx(), AgreeContract.parse(sessions=low))
        at_high.agree_contract(
            ctx(), AgreeContract.parse(sessions=high, frequency="twice_weekly")
        )

        assert at_low.contract == {"sessions": low, "frequency": "weekly"}
        assert at_high.contract == {"sessions": high, "frequency": "twice_weekly"}

    @pytest.mark.parametrize(("protocol", "low", "high"), CONTRACT_RANGES)
    def test_one_below_or_above_the_protocols_range_is_refused(
        self, protocol: str, low: int, high: int
    ) -> None:
        case = open_case(protocol)
        before = recorded(case)

        with pytest.raises(GuardFailed) as below:
            case.agree_contract(ctx(), AgreeContract.parse(sessions=low - 1))
        with pytest.raises(GuardFailed) as above:
            case.agree_contract(ctx(), AgreeContract.parse(sessions=high + 1))

        assert rules_of(below.value) == ["contract_outside_range"]
        assert rules_of(above.value) == ["contract_outside_range"]
        assert recorded(case) == before
        assert case.contract is None

    def test_a_second_contract_is_refused_because_one_exists(self) -> None:
        case = open_case()
        case.agree_contract(ctx(), AgreeContract.parse(sessions=12))

        with pytest.raises(GuardFailed) as refused:
            case.agree_contract(ctx(), AgreeContract.parse(sessions=14))

        assert rules_of(refused.value) == ["contract_exists"]
        assert case.contract is not None
        assert case.contract["sessions"] == 12

    def test_agreeing_a_contract_in_the_middle_phase_is_refused(self) -> None:
        case = in_middle()

        with pytest.raises(GuardFailed) as refused:
            case.agree_contract(ctx(), AgreeContract.parse(sessions=12))

        assert rules_of(refused.value) == ["wrong_phase"]


class TestRecordDeviation:
    @pytest.mark.parametrize("rule", ["beginning_session_limit", "contract_range"])
    def test_a_deviation_in_the_beginning_is_recorded_with_its_reason(
        self, rule: str
    ) -> None:
        case = open_case()

        case.record_deviation(
            ctx(), RecordDeviation.parse(rule=rule, reason="clinical_judgement")
        )

        event = new_events(case)[-1]
        assert isinstance(event, events.ProtocolDeviationRecorded)
        assert (event.rule, event.reason, event.phase) == (
            rule,
            "clinical_judgement",
            "beginning",
        )
        assert [d["rule"] for d in case.deviations] == [rule]

    def test_a_contract_range_deviation_in_the_middle_phase_is_recorded(
        self,
    ) -> None:
        case = in_middle()

        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )

        assert [(d["rule"], d["phase"]) for d in case.deviations] == [
            ("contract_range", "middle")
        ]

    def test_a_beginning_session_limit_deviation_after_the_beginning_is_refused(
        self,
    ) -> None:
        case = in_middle()
        before = recorded(case)

        with pytest.raises(GuardFailed) as refused:
            case.record_deviation(
                ctx(),
                RecordDeviation.parse(rule="beginning_session_limit", reason="crisis"),
            )

        assert rules_of(refused.value) == ["deviation_not_applicable"]
        assert recorded(case) == before

    def test_a_second_contract_range_deviation_while_one_is_open_is_refused(
        self,
    ) -> None:
        case = open_case()
        case.record_deviation(
            ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
        )

        with pytest.raises(GuardFailed) as refused:
            case.record_deviation(
                ctx(), RecordDeviation.parse(rule="contract_range", reason="scheduling")
            )

        assert rules_of(refused.value) == ["deviation_already_open"]

    def test_a_deviation_after_acute_treatment_is_refused(self) -> None:
        case = concluded_in_remission()

        with pytest.raises(GuardFailed) as refused:
            case.record_deviation(
                ctx(), RecordDeviation.parse(rule="contract_range", reason="crisis")
            )

        assert rules_of(refused.value) == ["wrong_phase"]

    def test_several_beginning_session_limit_deviations_may_be_recorded(
        self,
    ) -> None:
        case = open_case()
        case.record_deviation(
            ctx(),
            RecordDeviation.parse(rule="beginning_session_limit", reason="crisis"),
        )

        case.record_deviation(
            ctx(),
            RecordDeviation.parse(
                rule="beginning_session_limit", reason="client_request"
            ),
        )

        assert case.beginning_session_limit == SPECS["ipt"].beginning_max + 2
