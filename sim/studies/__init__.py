"""Studies built on runs: replications, comparisons with common random numbers, sweeps, sensitivity."""
