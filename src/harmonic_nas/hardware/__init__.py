"""hardware stage."""
