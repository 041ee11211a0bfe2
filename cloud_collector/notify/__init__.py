"""Notifications: a transactional outbox in PostgreSQL, drained by a dispatcher in every collector.

    alert change ──(same transaction)──► notifications (one row per channel × alert × event, unique)
    dispatcher (each process, every second) ──FOR UPDATE SKIP LOCKED──► group ──► webhook / e-mail

The unique key on (channel, alert, event) and the row locks are what make several collector processes
notify once. See :mod:`~cloud_collector.notify.outbox` and :mod:`~cloud_collector.notify.dispatcher`.
"""
