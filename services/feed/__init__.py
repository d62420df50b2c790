"""Live market data: sources of ticks, the hub that shares them, the WebSocket feed server."""
