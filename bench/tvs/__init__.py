"""Theory-vs-simulation timing cases, one module per paper family (see bench/theory_vs_sim.py)."""
