"""The flow runner: the RunFlow servicer, the version cache and the run recorder."""
