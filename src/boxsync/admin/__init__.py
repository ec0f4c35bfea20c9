"""The App Configuration admin page."""
