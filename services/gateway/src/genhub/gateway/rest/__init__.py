"""REST/JSON transcoding of the public gRPC API, by grpc-gateway's rules, with its OpenAPI
document and API page; runs in the gateway process and calls the gateway's own gRPC server."""
