"""Energy meters: register maps as data (one per model) and the polling loop."""
