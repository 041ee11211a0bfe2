"""Serial waveform sensors: a microcontroller streaming vibration or sound (docs/serial-protocol.md)."""

from edge_agent.sources.waveform.protocol import Frame, FrameParser, encode_frame
from edge_agent.sources.waveform.reader import WaveformSource, WaveformWindow

__all__ = ["Frame", "FrameParser", "WaveformSource", "WaveformWindow", "encode_frame"]
