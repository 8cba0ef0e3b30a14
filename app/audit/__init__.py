"""The audit: proving every case and disclosure is complete and unaltered.

* ``state``: a row's present state replayed from its events;
* ``merkle``/``signing``/``checkpoint``: signed Merkle roots over every chain
  head, made periodically by the worker and on demand;
* ``exported``: checkpoints kept by the commission outside this system;
* ``verifier``: ``ydt audit verify``, naming every problem it finds.

``inclusion(session, kind, chain_id)`` gives a chain's anchored head, the
checkpoint covering it and the Merkle proof (for the dossier).
"""

from app.audit.checkpoint import Inclusion, inclusion
from app.audit.verifier import AuditReport, Break, verify

__all__ = ["AuditReport", "Break", "Inclusion", "inclusion", "verify"]
