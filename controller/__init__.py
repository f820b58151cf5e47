"""GreenEdge host service: Modbus master, control loops, accounting, CLI."""

__version__ = "0.1.0"
