"""ORM tables of agreements, signatures and authorisations, created by migration
``0016_authorisations``.
"""

from __future__ import annotations
