"""Moment assistant: answers, the interaction log, Slack, mentors and reports."""
