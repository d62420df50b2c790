"""The market: instruments, the exchange calendar, the simulated market and option maths."""
