"""The WBS issue panel on Jira's issue view."""
