"""Statistics: the non-identifying facts of every report, kept past purge, and the counts,
trends, hotspots and publishable tables built from them."""
