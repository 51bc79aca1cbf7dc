"""Theory solvers: pure functions of arrays and numbers returning typed results."""
