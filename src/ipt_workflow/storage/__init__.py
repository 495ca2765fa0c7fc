"""Storage extensions of the eventsourcing library: the hash chain and the key ring.

Both are plugged in by topic from the settings module, so the application never
names a back end.
"""
