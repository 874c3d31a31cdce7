"""The data subjects' keys under the local development master key, as a service has them."""

from helpdesk_runtime.keyring import KeyRing
from helpdesk_runtime.personal_data import SubjectKeys
from helpdesk_runtime.settings import DEV_PII_MASTER_KEYS

DEV_KEYS = SubjectKeys(KeyRing.parse(DEV_PII_MASTER_KEYS))
