"""Boxes: Portfolio, Program, Project, Iteration… and their scope, WBS, task modes and mappings."""
