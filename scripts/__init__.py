"""The deployment pipeline: smoke, switch, monitor, rollback, deploy (``python -m scripts``)."""
