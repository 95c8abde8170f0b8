"""The run: its lifecycle and record (lifecycle.py), its checkpoint (checkpoint.py), durable
writes with group commit (journal.py), the queue runners share with leases (queue.py), the
worker processes heavy shapes run in (workers.py), a run in hand (active.py), execution
(driver.py), the version cache (versions.py) and retention (retention.py).

The RunFlow servicer (control_plane/runner/service.py) is a thin stream adapter over driver.py.
"""
