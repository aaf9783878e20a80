"""Statistical primitives shared by the modeling and analysis stages (numpy and scipy only)."""
