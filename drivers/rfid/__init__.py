"""RFID card readers: one module per protocol, one table from reader kind to protocol
(`protocols.PROTOCOLS`), and a common runtime (`reader.Reader`; `serial_reader` for the port's
lifecycle of the readers with a serial port of their own)."""
