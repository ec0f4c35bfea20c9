"""Atlassian Connect: descriptor, lifecycle, JWT + qsh verification, tenants."""
