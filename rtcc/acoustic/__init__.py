"""Gunshot detection: from sensor audio to a located, classified alert.

* ``detect`` — the edge onset detector: impulsive onsets timed to sub-sample precision.
* ``agent`` — the sensor agent (``rtcc sensor``): audio in, pulses out over MQTT/HTTPS, disk buffer.
* ``locate`` — association of pulses into bangs and TDOA multilateration with uncertainty ellipses.
* ``classify`` — gunfire versus fireworks, knocks, claps, construction… (ONNX model shipped here).
* ``pipeline`` — the center's processor: pulses on the bus → located shots → incidents → alerts.
"""
