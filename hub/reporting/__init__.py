"""What the ministry and the facilities learn of the hub's data, without anyone's health data."""
