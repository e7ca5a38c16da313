"""One person across facilities: Patient records linked by the national identifier."""
