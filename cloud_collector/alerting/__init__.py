"""The parts of alerting; the rules themselves are called from :mod:`cloud_collector.alerts`.

machine.py    Normal → Pending → Firing → Recovering → Normal, as a pure function
rules.py      alert_rules rows, which rule applies to a device, fires / clears verdicts
lifecycle.py  open-or-bump, clear, acknowledge, comment, feedback (SQL; one active per fingerprint)
noise.py      inhibition, silences and maintenance windows, quiet hours
"""
