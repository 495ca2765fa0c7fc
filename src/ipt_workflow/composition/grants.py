"""The privileges of a runtime role that may not change the schema (D90), in one place.

`ipt-workflow db grants ROLE` prints them, docs/operations.md sends operators there,
and the restricted-role test applies exactly this output, so the three cannot drift.
Rows are only ever appended to the events, their hashes, the checkpoints and the
access log: those get no DELETE.
"""

from __future__ import annotations

import re

from ipt_workflow.application.cases import CaseApplication
from ipt_workflow.composition.readmodels import postgres_tables
from ipt_workflow.storage.case_keys import TABLE as CASE_KEYS
from ipt_workflow.storage.webhooks import PRUNED_TABLES
from projections.catalog import CATALOG

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SCHEMA = "public"
"""Where the library creates every table (no schema is configured)."""


def deleted_tables() -> list[str]:
    """The tables a running service deletes rows from, and why."""
    events = f"{CaseApplication.name}_events"
    erasure = [
        CASE_KEYS,  # the case's data key: crypto-shredding (D102)
        events.removesuffix("_events") + "_snapshots",  # snapshots under that key
        f"{events}_keys",  # idempotency records of the case's requests
    ]
    # A read model forgets an erased case's facts and row (D107); counters are
    # updated, never deleted.
    forgetting = [
        table
        for name in CATALOG
        for table in postgres_tables(name)
        if table.endswith(("_facts", "_rows"))
    ]
    return [*erasure, *forgetting, *PRUNED_TABLES]


def runtime_grants(role: str) -> list[str]:
    """The GRANT statements for `role`, one per line, to run as the tables' owner
    after `db init` (and again after `projections rebuild`, whose new tables the
    grants of the old ones do not cover)."""
    if not ROLE_NAME.fullmatch(role):
        raise ValueError(
            "a role name is 1-63 characters of a-z 0-9 _, not starting with a digit"
        )
    deletes = ", ".join(f'{SCHEMA}."{t}"' for t in deleted_tables())
    return [
        f'GRANT USAGE ON SCHEMA {SCHEMA} TO "{role}";',
        f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {SCHEMA} TO "{role}";',
        f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO "{role}";',
        f'GRANT DELETE ON {deletes} TO "{role}";',
    ]
