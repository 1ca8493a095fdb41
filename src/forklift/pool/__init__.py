"""Reserved for a later issue."""
