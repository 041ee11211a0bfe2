"""Modbus sources: register maps (profiles), value decoding and the poller."""
