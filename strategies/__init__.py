"""User strategies hosted by the desk: each subclasses the strategy base in services/."""
