import ZMTPWire
