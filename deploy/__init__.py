"""Deployment files; only ``deploy.local`` holds Python (starting the local servers)."""
