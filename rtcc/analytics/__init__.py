"""Analytics: hotspots, deployment recommendations and their honest evaluation."""
