"""Two tiny apps with the same task names: one on real Celery, one on celery_docket.

Both write each run to the ledger file named by ``CUT_LEDGER`` (one ``O_APPEND`` write per
run: side, task id, time), outside the Redis under test, so a test counts runs exactly.
"""
