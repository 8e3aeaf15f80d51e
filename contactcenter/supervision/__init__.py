"""Supervisors: live figures from the event stream, their history, supervisors' actions, and the pages."""
