"""The agent: connect/lease/heartbeat loop, conda resolution, description upload."""
