"""The Pipelines panel: pipeline files, each as a graph coloured by the state of a run, its runs,
a step's outputs and log, the file with its problems, and a Run button."""
