"""``python -m simulator``: the same as ``signalcraft simulate``."""

import typer

from simulator.cli import simulate

if __name__ == "__main__":
    typer.run(simulate)
