"""One dispatcher delivers per database; another waits and takes over (D66)."""

from __future__ import annotations

from ipt_workflow.composition.builders import build_application
from ipt_workflow.composition.settings import Settings
from ipt_workflow.composition.webhooks import build_dispatcher


def test_only_one_dispatcher_leads_and_a_standby_takes_over(settings: Settings) -> None:
    app = build_application(settings)
    first = build_dispatcher(settings, app)
    second = build_dispatcher(settings, app)

    first.tick()
    second.tick()
    leaders_then = (first.leader, second.leader)
    first.stop()
    second.tick()
    second.tick()
    beat = second.store.last_beat()

    assert leaders_then == (True, False)
    assert second.leader
    assert beat is not None and beat[0] == second.holder
    second.stop()
    for dispatcher in (first, second):
        dispatcher.store.close()
    app.close()
