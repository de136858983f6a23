"""What every room of the core shares: errors, the name rule, output files, paths and process facts."""
