"""Jobs: the runner (``runner``), the registry of job kinds, and the store's housekeeping jobs."""
