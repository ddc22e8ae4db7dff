"""backbones stage."""
