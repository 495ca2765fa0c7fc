"""The rules of domain.md, one module per part of the course they govern.

Each rule is a pure function of the case's facts and a command, returning every
violation it finds (an empty list: the command may go ahead). Each rule code is
raised in one module only; a rule that another part needs (the inventory before
the middle phase) is called from there, not written again.

Where each section of domain.md is enforced:

- §1 one open case per client: the application (the client index);
- §2 phases and transitions: `phases` (the machine, and where each command runs);
- §3 protocols: `protocols` (data), enforced by the modules below;
- §4 open case, reassign: `opening`;
- §4 inventory, focus, dispute stage: `focus`;
- §4 contract, renegotiation, deviations: `contract`;
- §4 sessions and their limits: `sessions`;
- §4 corrections: `corrections`;
- §4 start middle, start end, conclude, withdraw: `transitions`;
- §5 outcome: `measures` (and the classification in `ipt_workflow.domain.measures`);
- §5 follow-up, offer, accept, decline, close: `follow_up`.
"""
