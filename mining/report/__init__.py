"""The run report (report.html) of every dataset version."""
