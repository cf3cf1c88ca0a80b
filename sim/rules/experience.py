"""Experience (phase B's last step): what using a service, or hearing of it from ties, does
to a family's trust and to the fit it sees in a type (DESIGN §2; KOALA and the focus groups:
trust grows through contact, parents tell each other what a service is like).
"""

from __future__ import annotations

from sim.core.codes import ENROLLED, N_TYPES
from sim.core.compiled import kernel


@kernel
def experience(fam, wom_heard, behaviour):
    """Phase B step 6: use of any service raises trust, use raises the perceived fit of the
    type, and hearing of it from ties who use it (`wom_heard`, bool [F, T]) raises the fit of
    a type not in use; the weekly gains are `behaviour`'s (`Behaviour`)."""
    status, trust, perceived_fit = fam.status, fam.trust, fam.perceived_fit
    fit_gain, wom_fit_gain = behaviour.fit_gain, behaviour.wom_fit_gain
    for r in range(status.shape[0]):
        any_enrolled = False
        for t in range(N_TYPES):
            if status[r, t] == ENROLLED:
                any_enrolled = True
                perceived_fit[r, t] += fit_gain * (1.0 - perceived_fit[r, t])
            elif wom_heard[r, t]:
                perceived_fit[r, t] += wom_fit_gain * (1.0 - perceived_fit[r, t])
        if any_enrolled:
            trust[r] += behaviour.trust_gain * (1.0 - trust[r])
