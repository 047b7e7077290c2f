"""RFID card readers: one module per protocol, a common reader runtime."""
