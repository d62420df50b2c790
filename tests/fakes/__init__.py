"""Fakes of outside services (brokers), served on loopback by the tests themselves."""
