"""Targets: implementations under test, their specs (``target.yaml``) and the runners that start them."""
