"""The licences read model: every licence and quota as issued, drawn and remaining,
each draw with the event that made it, and quota use by month.

``rows``, ``view`` and ``projection`` need no database; ``schema`` describes the tables
once, and ``sqlite`` and ``postgres`` are the two views (import them from there: this
package does not, so that its readers need no SQL driver). Refused attempts are not
here: they are not events, and a rebuild must not forget them (``projections.refusals``).
"""

from lodestone.projections.licences.projection import NAME, VERSION, LicencesProjection, month
from lodestone.projections.licences.rows import Draw, LicenceRow, Party
from lodestone.projections.licences.view import LicencesView, Writer

__all__ = [
    "NAME",
    "VERSION",
    "Draw",
    "LicenceRow",
    "LicencesProjection",
    "LicencesView",
    "Party",
    "Writer",
    "month",
]
