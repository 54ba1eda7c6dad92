"""Adapters at the edge: DynamoDB, SQS, Secrets Manager and S3 behind small interfaces."""
