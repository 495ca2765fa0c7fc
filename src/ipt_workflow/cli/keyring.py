"""`ipt-workflow keys rewrap`: every case data key under the ring's newest key.

Then it counts, per ring key, what that key still seals (D111): a key may leave
`IPT_CIPHER_KEY` only when nothing is left under it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ipt_workflow.composition.settings import Settings


def run(settings: Settings) -> int:
    from ipt_workflow.composition.builders import build_application
    from ipt_workflow.ops.progress import progress
    from ipt_workflow.storage.cipher import KeyRingCipher
    from ipt_workflow.storage.rewrap import rewrap_case_keys, ring_census

    app = build_application(settings)
    try:
        mapper = app.case_keys
        if mapper is None or not isinstance(mapper.ring, KeyRingCipher):
            sys.stderr.write("IPT_CIPHER_KEY is not set: there are no data keys\n")
            return 2
        ring, store = mapper.ring, mapper.keys
        with progress("rewrap case data keys", store.count(), unit="keys") as bar:
            done = rewrap_case_keys(store, ring, on_batch=bar.update)
        newest = ring.newest.hex()
        sys.stdout.write(
            f"rewrap: {done.seen} data keys, {done.rewrapped} re-wrapped under ring "
            f"key {newest}, {done.current} already were\n"
        )
        recorder: Any = app.recorder
        head = recorder.max_notification_id() or 0
        snapshots = None if app.snapshots is None else app.snapshots.recorder
        with progress("census of the ring's keys", head, unit="events") as bar:
            found = ring_census(
                store,
                recorder,
                cast(Any, snapshots),
                sorted(recorder.select_aggregate_ids()),
                on_batch=bar.update,
            )
    finally:
        app.close()
    configured = ring.fingerprints
    for key in [*configured, *(k for k in found if k not in configured)]:
        use = found.get(key)
        where = (
            f"ring key {configured.index(key) + 1} of {len(configured)}"
            if key in configured
            else "a key NOT in IPT_CIPHER_KEY"
        )
        if use is None or not use.anything:
            sys.stdout.write(
                f"{key.hex()} ({where}): seals nothing; "
                "it may be removed from IPT_CIPHER_KEY\n"
            )
            continue
        needed = "" if key == ring.newest else ": still needed, keep it listed"
        sys.stdout.write(
            f"{key.hex()} ({where}): {use.data_keys} data keys, "
            f"{use.envelopes} event envelopes, {use.whole_events} whole events "
            f"(of {len(use.cases)} aggregates), {use.snapshots} snapshots{needed}\n"
        )
    return 0
