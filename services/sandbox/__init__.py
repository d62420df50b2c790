"""The paper-trading exchange behind the sandbox broker: engine, margins, charges, books."""
