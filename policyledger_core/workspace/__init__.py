"""A workspace's services: the policy store, the user context, publishing, bundles, audit,
marketplace, repair."""
