"""The test kit: fake venues, a fault-injecting Vision mirror, seeded bars and a store writer."""
