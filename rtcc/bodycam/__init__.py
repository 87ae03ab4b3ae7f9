"""Body-worn cameras: registry, MQTT protocol, remote and automatic activation."""
