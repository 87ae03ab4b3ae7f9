"""What runs on a field device (sensor, plate camera) rather than in the center."""
