"""The airlock (出域审核): nothing a sandbox job writes reaches its developer before automatic
disclosure checks (:mod:`.checks`, :mod:`.leakage`), the differencing ledger (:mod:`.ledger`)
and, by grade, independent checkers (:mod:`.review`) have passed it; the release request
moves through the state machine in :mod:`.states`.  Pure domain code: storage, API and UI
call into it."""
