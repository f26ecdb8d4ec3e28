"""Generated gRPC stubs for proto/envd/v1 (do not edit; see scripts/gen_protos)."""
