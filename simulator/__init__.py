"""Simulated refrigeration compressors, served as Modbus RTU slaves on pseudo-terminals.

``Compressor`` is the physics (deterministic per seed, with developing faults); ``start_unit`` and
``start_fleet`` serve units on ptys that the agent opens like serial ports. See ``simulator/README.md``.
"""

from simulator.agent_config import agent_config_toml
from simulator.compressor import Compressor
from simulator.faults import KINDS as FAULT_KINDS
from simulator.faults import FaultSpec
from simulator.modbus_slave import Fleet, SimulatedUnit, start_fleet, start_unit

__all__ = [
    "FAULT_KINDS",
    "Compressor",
    "FaultSpec",
    "Fleet",
    "SimulatedUnit",
    "agent_config_toml",
    "start_fleet",
    "start_unit",
]
