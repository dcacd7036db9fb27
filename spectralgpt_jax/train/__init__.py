"""Training: state, optimizer, objectives (tasks/), the compiled program, metrics, the loop."""
