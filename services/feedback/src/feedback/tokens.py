"""The survey page's link: a signed token naming the tenant, the invitation and its expiry.

Signed with the service's secret (itsdangerous), so a forged or altered link names nothing;
the expiry is in the token too, so an expired link is told apart from a forged one even
when the invitation is gone. The invitation in the database stays the authority.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "survey-link-v1"


@dataclass(frozen=True)
class SurveyLink:
    tenant_id: str
    survey_id: UUID
    expires_at: datetime


class Links:
    def __init__(self, secret: str) -> None:
        self._signer = URLSafeSerializer(secret, salt=SALT)

    def token(self, link: SurveyLink) -> str:
        expiry = int(link.expires_at.timestamp())
        return str(self._signer.dumps([link.tenant_id, link.survey_id.hex, expiry]))

    def read(self, token: str) -> SurveyLink | None:
        """The link a token stands for; None if it is not one of ours (forged, altered)."""
        try:
            tenant, survey, expiry = self._signer.loads(token)
            return SurveyLink(str(tenant), UUID(hex=survey), datetime.fromtimestamp(expiry, UTC))
        except (BadSignature, ValueError, TypeError):
            return None
