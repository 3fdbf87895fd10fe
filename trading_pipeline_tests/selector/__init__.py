"""Tests for the strategy selector."""
