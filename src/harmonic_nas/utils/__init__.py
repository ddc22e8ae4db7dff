"""Small shared helpers (atomic files, JSON with schema versions, seeding)."""
