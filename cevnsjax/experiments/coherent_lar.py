"""Placeholder: filled by the preset author."""
