"""vidssm: video models built on linear recurrences."""
