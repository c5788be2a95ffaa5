"""The deployment pipeline: smoke, switch, monitor, rollback, deploy (``bluegreen``, or ``python -m scripts``)."""
