"""Sensor sources. Each yields readings: ``{point name: value}`` per poll, plus the points it missed."""
