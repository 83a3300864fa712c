"""Operator commands of ``routerbot`` that are neither a front-end nor a report."""
