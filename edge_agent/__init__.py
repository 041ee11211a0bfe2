"""The SignalCraft edge agent: source → features → model → state → buffer → uplink."""

__version__ = "0.1.0"
