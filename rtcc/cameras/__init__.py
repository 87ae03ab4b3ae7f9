"""Cameras: city, in-car and community registry, visibility, footage requests, live view."""
