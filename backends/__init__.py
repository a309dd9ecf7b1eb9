"""Everything the gateway routes to: vendor adapters, the local diffusers backend, simulators."""
