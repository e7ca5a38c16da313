"""The ground floor: what every package of the hub shares, importing nothing above it."""
