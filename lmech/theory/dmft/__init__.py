"""Dynamical mean field theory (DMFT) of feature learning in wide networks."""
