"""The local AWS stack: moto server, the template's resources, the HTTP API shim and the Lambda runtime."""
