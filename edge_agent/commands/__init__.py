"""The technician's commands of ``signalcraft-agent``, one module per group, mounted by
:mod:`edge_agent.cli`.

The logic lives in :mod:`edge_agent.diagnose`; these modules only parse options and print, for people
(rich) or for scripts (``--json``, one object, or one per line for streams).
"""
