"""The bots as Dagster definitions: deploying assignments (a job and the champion sensor) and
the paper replay report."""
